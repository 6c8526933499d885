"""A small Neon API v2 client of our own, built on httpx.

Why not the ``neon-api`` package: it drops fields and hides HTTP status codes, and the
provider code needs both (404 means "already gone", 423 means "try again"). This client keeps
every response body as a plain dict, retries only what Neon documents as safe to retry, and
waits for the asynchronous ``operations`` a mutating call starts.

Retry policy (from the published API description): 423 Locked and 503 are always safe to
retry; 429 is retried after ``Retry-After`` (or backoff); connection failures are retried
for idempotent methods always, and for POST/PATCH/DELETE only when the request never left
(connect errors), because a POST whose answer was lost may already have taken effect.
"""

from __future__ import annotations

import email.utils
import os
import random
import time
import uuid
from typing import Any, Callable, Iterable, Mapping, Optional

import httpx

DEFAULT_API_URL = "https://console.neon.tech/api/v2"
RETRYABLE_STATUS = frozenset({423, 429, 503})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Operation statuses after which nothing more will happen.
DONE_STATUSES = frozenset({"finished", "skipped", "cancelled"})
FAILED_STATUSES = frozenset({"failed", "error"})
#: Response headers Neon (and proxies in front of it) use for the request id, in preference order.
REQUEST_ID_HEADERS = ("x-neon-ret-request-id", "x-request-id")


class NeonApiError(Exception):
    """A Neon API call that did not succeed, with everything needed to report it upstream."""

    def __init__(
        self,
        message: str,
        *,
        status: Optional[int] = None,
        code: str = "",
        request_id: Optional[str] = None,
        method: str = "",
        path: str = "",
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.method = method
        self.path = path
        where = f"{method} {path}".strip()
        parts = [f"Neon API {where}" if where else "Neon API"]
        parts.append(f"HTTP {status}" if status is not None else "no response")
        if code:
            parts.append(f"code {code}")
        if request_id:
            parts.append(f"request id {request_id}")
        super().__init__(f"{' · '.join(parts)}: {message}")


class NeonDeadlineExceeded(NeonApiError):
    """Retries or operation polling ran past the caller's overall deadline."""


class NeonOperationFailed(NeonApiError):
    """An asynchronous Neon operation ended in ``failed`` or ``error``."""


def _retry_after_seconds(value: Optional[str], now: Callable[[], float] = time.time) -> Optional[float]:
    # Retry-After is either delta-seconds or an HTTP date (RFC 9110 §10.2.3).
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now())


class NeonClient:
    """Synchronous Neon API v2 client.

    Operation polling starts at ``poll_initial`` and grows 1.5x to ``poll_max``: 0.2 s keeps a
    create within ~0.3 s of the service's own time (benchmarks/neon_create.py) at ~5 polls per
    second of operation, far under the 700 requests/minute account limit for one create.

    ``sleep``, ``clock`` and ``rng`` are injectable so tests can run retry schedules instantly
    and deterministically; ``transport`` lets a test swap in ``httpx.MockTransport``.
    """

    def __init__(
        self,
        api_key: Optional[str] = None,
        base_url: Optional[str] = None,
        *,
        timeout: float = 30.0,
        deadline: float = 120.0,
        backoff_base: float = 0.2,
        backoff_cap: float = 8.0,
        poll_initial: float = 0.1,
        poll_max: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: Optional[random.Random] = None,
        transport: Optional[httpx.BaseTransport] = None,
    ) -> None:
        api_key = api_key if api_key is not None else os.environ.get("NEON_API_KEY", "")
        if not api_key:
            raise ValueError(
                "NEON_API_KEY: not set; the Neon API needs an API key "
                "(set NEON_API_KEY or pass api_key=)"
            )
        self.base_url = (base_url or os.environ.get("NEON_API_URL") or DEFAULT_API_URL).rstrip("/")
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"NEON_API_URL: {self.base_url!r} is not an http(s) URL")
        self.deadline = deadline
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.poll_initial = poll_initial
        self.poll_max = poll_max
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()
        #: Every HTTP attempt made (including retries): the benchmark reports it.
        self.request_count = 0
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            headers={
                "Authorization": f"Bearer {api_key}",
                "Accept": "application/json",
                "User-Agent": "pgtiers-neon/1",
            },
            transport=transport,
        )

    def pause(self, seconds: float) -> None:
        """Sleep with the injected sleeper (callers polling their own state use it too)."""
        self._sleep(seconds)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "NeonClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- transport with retries -------------------------------------------------------

    def _backoff(self, attempt: int) -> float:
        # "Equal jitter": half the exponential step is guaranteed, half is random, so parallel
        # CI jobs spread out but nobody hammers the API with near-zero sleeps.
        step = min(self.backoff_cap, self.backoff_base * (2 ** attempt))
        return step / 2 + self._rng.uniform(0, step / 2)

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Optional[Mapping[str, Any]] = None,
        ok_statuses: Iterable[int] = (),
    ) -> Optional[dict]:
        """Send one API call, retrying what is safe to retry until ``deadline`` seconds pass.

        Returns the decoded JSON body (``None`` for an empty body). A status listed in
        ``ok_statuses`` is returned as ``{"_status": status}`` instead of raising, which is how
        callers treat 404 on delete as success.
        """
        method = method.upper()
        ok = set(ok_statuses)
        started = self._clock()
        attempt = 0
        while True:
            # A fresh request id per attempt: Neon echoes it, so support can trace every try.
            request_id = str(uuid.uuid4())
            self.request_count += 1
            try:
                response = self._http.request(
                    method, path, json=json, params=params, headers={"X-Request-ID": request_id}
                )
            except httpx.TransportError as exc:
                never_sent = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
                if method not in IDEMPOTENT_METHODS and not never_sent:
                    raise NeonApiError(
                        f"{type(exc).__name__}: {exc}; not retried because a {method} may "
                        "already have taken effect",
                        request_id=request_id, method=method, path=path,
                    ) from exc
                delay = self._backoff(attempt)
                last = NeonApiError(f"{type(exc).__name__}: {exc}", request_id=request_id,
                                    method=method, path=path)
            else:
                status = response.status_code
                if status < 400 or status in ok:
                    return self._decode(response, method, path, request_id, status in ok)
                error = self._error(response, method, path, request_id)
                if status not in RETRYABLE_STATUS:
                    raise error
                delay = self._backoff(attempt)
                if status == 429:
                    hinted = _retry_after_seconds(response.headers.get("retry-after"))
                    if hinted is not None:
                        delay = hinted
                last = error
            elapsed = self._clock() - started
            if elapsed + delay > self.deadline:
                raise NeonDeadlineExceeded(
                    f"gave up after {attempt + 1} attempts in {elapsed:.1f}s "
                    f"(deadline {self.deadline:g}s); last error: {last.message}",
                    status=last.status, code=last.code, request_id=last.request_id,
                    method=method, path=path,
                ) from last
            self._sleep(delay)
            attempt += 1

    def _decode(self, response: httpx.Response, method: str, path: str, request_id: str,
                tolerated: bool) -> Optional[dict]:
        if tolerated:
            return {"_status": response.status_code}
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise NeonApiError(
                f"response is not JSON: {response.text[:200]!r}", status=response.status_code,
                request_id=self._request_id(response, request_id), method=method, path=path,
            ) from exc

    @staticmethod
    def _request_id(response: httpx.Response, sent: str) -> str:
        for header in REQUEST_ID_HEADERS:
            if response.headers.get(header):
                return response.headers[header]
        return sent

    def _error(self, response: httpx.Response, method: str, path: str, sent_id: str) -> NeonApiError:
        code, message, request_id = "", response.reason_phrase or "error", None
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            code = str(body.get("code") or "")
            message = str(body.get("message") or message)
            request_id = body.get("request_id")
        elif response.text:
            message = response.text[:200]
        return NeonApiError(
            message, status=response.status_code, code=code,
            request_id=request_id or self._request_id(response, sent_id),
            method=method, path=path,
        )

    # ---- operations -------------------------------------------------------------------

    def wait_for_operations(self, project_id: str, operations: Iterable[Mapping[str, Any]],
                            *, timeout: float = 600.0) -> None:
        """Block until every operation is done; raise on ``failed``/``error`` or timeout.

        Neon runs a branch's operations one after another, so each round polls in order and
        stops at the first unfinished one: the later ones cannot be done yet, and skipping them
        keeps the request count (700/min per account) low.
        """
        pending = [dict(op) for op in operations if op.get("status") not in DONE_STATUSES]
        for op in pending:
            self._raise_if_failed(project_id, op)
        started = self._clock()
        interval = self.poll_initial
        while pending:
            elapsed = self._clock() - started
            if elapsed + interval > timeout:
                names = ", ".join(f"{op.get('action')} {op['id']} ({op.get('status')})" for op in pending)
                raise NeonDeadlineExceeded(
                    f"operations still unfinished after {elapsed:.1f}s (timeout {timeout:g}s): {names}",
                    method="GET", path=f"/projects/{project_id}/operations",
                )
            self._sleep(interval)
            interval = min(self.poll_max, interval * 1.5)
            while pending:
                body = self.request("GET", f"/projects/{project_id}/operations/{pending[0]['id']}")
                op = (body or {}).get("operation", {})
                self._raise_if_failed(project_id, op)
                if op.get("status") not in DONE_STATUSES:
                    break
                pending.pop(0)

    @staticmethod
    def _raise_if_failed(project_id: str, op: Mapping[str, Any]) -> None:
        if op.get("status") in FAILED_STATUSES:
            raise NeonOperationFailed(
                f"operation {op.get('action')} {op.get('id')} on branch {op.get('branch_id')} "
                f"ended {op.get('status')}: {op.get('error') or 'no error text'}",
                code=str(op.get("status")), method="GET",
                path=f"/projects/{project_id}/operations/{op.get('id')}",
            )

    def call(self, method: str, path: str, *, json: Any = None, project_id: str,
             op_timeout: float = 600.0) -> dict:
        """A mutating call followed by waiting for the operations it started."""
        body = self.request(method, path, json=json) or {}
        self.wait_for_operations(project_id, body.get("operations", []), timeout=op_timeout)
        return body

    # ---- typed helpers (paths as in the published API description) ---------------------

    def list_branches(self, project_id: str, *, search: Optional[str] = None,
                      page_size: int = 1000) -> tuple[list[dict], dict]:
        """All branches of a project (following cursor pagination) and their annotations."""
        branches: list[dict] = []
        annotations: dict = {}
        params: dict[str, Any] = {"limit": page_size, "sort_by": "created_at", "sort_order": "asc"}
        if search:
            params["search"] = search
        while True:
            body = self.request("GET", f"/projects/{project_id}/branches", params=params) or {}
            page = body.get("branches", [])
            branches.extend(page)
            annotations.update(body.get("annotations") or {})
            cursor = (body.get("pagination") or {}).get("next")
            if not page or not cursor or len(page) < params["limit"]:
                return branches, annotations
            params = {**params, "cursor": cursor}

    def get_branch(self, project_id: str, branch_id: str) -> Optional[dict]:
        """``{"branch": ..., "annotation": ...}``, or ``None`` when the branch does not exist."""
        body = self.request("GET", f"/projects/{project_id}/branches/{branch_id}", ok_statuses=(404,))
        return None if body is None or body.get("_status") == 404 else body

    def delete_branch(self, project_id: str, branch_id: str, *, op_timeout: float = 600.0) -> bool:
        """Delete a branch; ``False`` when it was already gone (204/404 — both mean done)."""
        body = self.request("DELETE", f"/projects/{project_id}/branches/{branch_id}", ok_statuses=(404,))
        if body is None or body.get("_status") == 404:
            return False
        self.wait_for_operations(project_id, body.get("operations", []), timeout=op_timeout)
        return True

    def list_branch_endpoints(self, project_id: str, branch_id: str) -> list[dict]:
        body = self.request("GET", f"/projects/{project_id}/branches/{branch_id}/endpoints") or {}
        return body.get("endpoints", [])

    def list_roles(self, project_id: str, branch_id: str) -> list[dict]:
        body = self.request("GET", f"/projects/{project_id}/branches/{branch_id}/roles") or {}
        return body.get("roles", [])

    def list_databases(self, project_id: str, branch_id: str) -> list[dict]:
        body = self.request("GET", f"/projects/{project_id}/branches/{branch_id}/databases") or {}
        return body.get("databases", [])

    def connection_uri(self, project_id: str, branch_id: str, database: str, role: str, *,
                       endpoint_id: Optional[str] = None, pooled: bool = False) -> str:
        """``GET /projects/{id}/connection_uri``: a URI (with the role's current password) for one
        database. ``pooled=False`` (the default) gives the direct host, which session features
        (advisory locks, COPY, ``search_path``) need. The URI carries a password: never log it."""
        params: dict[str, Any] = {"branch_id": branch_id, "database_name": database, "role_name": role,
                                  "pooled": "true" if pooled else "false"}
        if endpoint_id:
            params["endpoint_id"] = endpoint_id
        body = self.request("GET", f"/projects/{project_id}/connection_uri", params=params) or {}
        uri = body.get("uri")
        if not isinstance(uri, str) or not uri:
            raise NeonApiError("the answer has no connection uri", method="GET",
                               path=f"/projects/{project_id}/connection_uri")
        return uri
