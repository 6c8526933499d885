"""The connection contract: what every database tier hands to the app.

Every tier component produces a ``pulumi.Output[DatabaseConnection]`` that is secret from
birth; ``AppDatabaseSecret`` renders it into the same eight Secret keys whatever the tier.
The class holds plain values only, so it can be built inside ``apply`` and pickled.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Optional
from urllib.parse import quote, urlencode

SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")

#: The Secret keys every tier delivers, in a stable order.
SECRET_KEYS = (
    "DATABASE_URL",
    "DATABASE_URL_DIRECT",
    "PGHOST",
    "PGPORT",
    "PGDATABASE",
    "PGUSER",
    "PGPASSWORD",
    "PGSSLMODE",
)


def _component(value: str) -> str:
    # RFC 3986 userinfo / path segment: keep only unreserved characters literal, so '@', ':',
    # '/', '?', '#', '%', spaces and non-ASCII letters in a password can never change how the
    # URL parses. libpq decodes every %XX, so over-encoding is always safe.
    return quote(value, safe="-._~")


@dataclasses.dataclass(frozen=True)
class DatabaseConnection:
    """Everything an app needs to reach its PostgreSQL database, as plain values."""

    host: str
    """DNS name or address of the server (direct, never a pooler)."""
    port: int
    """TCP port, usually 5432."""
    database: str
    """Name of the database the app owns."""
    username: str
    """Role the app logs in as."""
    password: str
    """That role's password. Never log or export it in plain text."""
    sslmode: str = "require"
    """libpq ``sslmode``: one of disable, allow, prefer, require, verify-ca, verify-full."""
    pooled_host: Optional[str] = None
    """Host of a connection pooler in front of the server (e.g. Neon's ``-pooler`` host)."""
    options: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Extra libpq URL parameters (e.g. ``{"connect_timeout": "10"}``)."""

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("DatabaseConnection.host: must not be empty")
        if not isinstance(self.port, int) or not 1 <= self.port <= 65535:
            raise ValueError(f"DatabaseConnection.port: {self.port!r} is not a TCP port (1-65535)")
        if not self.database:
            raise ValueError("DatabaseConnection.database: must not be empty")
        if not self.username:
            raise ValueError("DatabaseConnection.username: must not be empty")
        if self.sslmode not in SSL_MODES:
            raise ValueError(
                f"DatabaseConnection.sslmode: {self.sslmode!r} is not one of {', '.join(SSL_MODES)}"
            )
        if "sslmode" in self.options:
            raise ValueError("DatabaseConnection.options: set sslmode through the sslmode field")
        # A frozen dataclass holding a mutable dict could still change under us; copy it.
        object.__setattr__(self, "options", dict(self.options))

    def _url(self, host: str) -> str:
        query = urlencode({"sslmode": self.sslmode, **dict(sorted(self.options.items()))}, quote_via=quote)
        return (
            f"postgresql://{_component(self.username)}:{_component(self.password)}"
            f"@{_host(host)}:{self.port}/{_component(self.database)}?{query}"
        )

    def url(self) -> str:
        """The app's ``DATABASE_URL``: through the pooler when there is one."""
        return self._url(self.pooled_host or self.host)

    def direct_url(self) -> str:
        """A URL that never goes through a pooler: for migrations and session features."""
        return self._url(self.host)

    def env(self) -> dict[str, str]:
        """The libpq environment variables (direct host: libpq tools are session users)."""
        return {
            "PGHOST": self.host,
            "PGPORT": str(self.port),
            "PGDATABASE": self.database,
            "PGUSER": self.username,
            "PGPASSWORD": self.password,
            "PGSSLMODE": self.sslmode,
        }

    def secret_data(self) -> dict[str, str]:
        """The eight keys of the app Secret, identical on every tier."""
        data = {"DATABASE_URL": self.url(), "DATABASE_URL_DIRECT": self.direct_url(), **self.env()}
        return {key: data[key] for key in SECRET_KEYS}

    def __repr__(self) -> str:  # keep passwords out of logs and tracebacks
        return (
            f"DatabaseConnection(host={self.host!r}, port={self.port}, database={self.database!r}, "
            f"username={self.username!r}, password='***', sslmode={self.sslmode!r}, "
            f"pooled_host={self.pooled_host!r})"
        )


def _host(host: str) -> str:
    # IPv6 literals need brackets in a URL authority.
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
