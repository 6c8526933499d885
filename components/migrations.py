"""AtlasMigrations and ConnectivityCheck: schema and proof, from the app Secret.

Both run inside the cluster as Kubernetes Jobs that read the database URL from the app Secret
(``AppDatabaseSecret``) through ``secretKeyRef``/``envFrom``: the URL and password never appear in
a Job spec, in Pulumi state or in the offline plan, nor in a process's arguments on the node
(``/proc/<pid>/cmdline``, ``crictl inspect``): the tools read them from their environment.
Pulumi awaits a Job until it completes, so a failed migration or a Secret that does not connect
fails ``pulumi up`` instead of the app.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Literal, Optional, Sequence, TypedDict, Union

import pulumi
import pulumi_kubernetes as k8s

from .custom_object import CustomObject
from .db.local import POSTGRES_UID
from .jobs import psql_image, run_once_job, short_hash
from .migrations_files import REVISIONS_SCHEMA, directory_hash, read_migrations_dir

#: Official Atlas image, pinned. The plain tag is the distroless build (entrypoint ``/atlas``, no
#: shell): the URL reaches Atlas through ``getenv`` in a mounted project file (``ATLAS_CONFIG``),
#: never through ``args``. 1.3.3 was the newest numbered tag in October 2026; ``latest`` tracks
#: canary builds.
ATLAS_IMAGE = "arigaio/atlas:1.3.3"
#: uid/gid of the ``nonroot`` user of distroless images; the Atlas image sets no USER itself.
ATLAS_UID = 65532

#: The Atlas Operator's official chart (github.com/ariga/atlas-operator, charts/atlas-operator),
#: pinned; 0.7.51 is the release of ariga/atlas-operator#398.
ATLAS_OPERATOR_CHART = "oci://ghcr.io/ariga/charts/atlas-operator"
ATLAS_OPERATOR_CHART_VERSION = "0.7.51"
ATLAS_OPERATOR_NAMESPACE = "atlas-operator"

#: The app Secret key migrations read: never the pooled URL, because Atlas holds a session
#: advisory lock and sets search_path for the whole run (PgBouncer transaction mode breaks both).
DIRECT_URL_KEY = "DATABASE_URL_DIRECT"
MIGRATIONS_MOUNT = "/migrations"
#: Where ``job`` mode mounts its Atlas project file: apart from the migration directory, whose
#: mount holds exactly the migration files.
CONFIG_MOUNT = "/config"
CONFIG_KEY = "atlas.hcl"
ATLAS_ENV = "pgtiers"

#: The project file of ``job`` mode. Atlas reads the URL from the Pod's environment (``getenv``), so
#: the kubelet never writes it into the process's arguments, where anyone who can read
#: ``/proc/<pid>/cmdline`` on the node, or run ``crictl inspect``, would see the password.
ATLAS_CONFIG = f"""# pgtiers AtlasMigrations: atlas migrate apply --config file://{CONFIG_MOUNT}/{CONFIG_KEY} --env {ATLAS_ENV}
env "{ATLAS_ENV}" {{
  url = getenv("{DIRECT_URL_KEY}")
  migration {{
    dir              = "file://{MIGRATIONS_MOUNT}"
    revisions_schema = "{REVISIONS_SCHEMA}"
  }}
}}
"""

MODES = ("job", "operator")

# A Job's name becomes the `job-name` label of its Pods, so it must be a DNS-1123 label.
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_MAX_LABEL = 63


def _job_name(component: str, name: str) -> str:
    if len(name) > _MAX_LABEL or not _DNS_LABEL.fullmatch(name):
        raise ValueError(
            f"{component}: Kubernetes name {name!r} is not a DNS-1123 label (lowercase letters, digits and "
            f"'-', at most {_MAX_LABEL} characters); give the component a shorter lowercase name")
    return name


def _folded(component: str, prefix: str, digest: str, full_digest: str,
            run_key: Optional[pulumi.Input[str]]) -> pulumi.Input[str]:
    """``prefix + digest`` without a run key (the name a stack had before run keys existed); with
    one, ``digest`` is replaced by a hash of the same length over the content and the key, so a new
    target database gets a new Job even when the content is unchanged."""
    _job_name(component, f"{prefix}{digest}")  # the same length either way: check it once, up front
    if run_key is None:
        return f"{prefix}{digest}"
    return pulumi.Output.from_input(run_key).apply(
        lambda key: f"{prefix}{short_hash(full_digest, str(key), length=len(digest))}")


def _after(*groups: Optional[Sequence[pulumi.Resource]]) -> list[pulumi.Resource]:
    return [r for group in groups for r in (group or [])]


# --- AtlasMigrations --------------------------------------------------------------------------


class AtlasMigrationsArgs(TypedDict, total=False):
    namespace: pulumi.Input[str]
    """Namespace of the app Secret; the ConfigMap, the Job or the AtlasMigration go there too."""
    secret_name: str
    """Name of the app Secret (default ``database``); its ``DATABASE_URL_DIRECT`` key is the target."""
    migrations_dir: str
    """Local Atlas migration directory (``*.sql`` + ``atlas.sum``); verified against atlas.sum first."""
    mode: Literal["job", "operator"]
    """``job`` (default): a Job running the Atlas image. ``operator``: the Atlas Operator and an
    ``AtlasMigration`` resource."""
    image: str
    """Atlas image for ``job`` mode (default: the pinned ``ATLAS_IMAGE``); keep it pinned."""
    run_key: pulumi.Input[str]
    """``job`` mode: changes when the target database changes (e.g. a short hash of its host, port,
    database and user), so a re-created database gets the migrations again; it ends up in the Job's
    name, so it must not be secret. Default: none, the Job follows the files only."""
    depends_on: Sequence[pulumi.Resource]
    """The database and the Secret (resources or components): migrations start after both exist."""
    ready_after: Sequence[pulumi.Resource]
    """Extra readiness gates, e.g. an ExternalSecret that must have synced the Secret first (annotate
    it ``pulumi.com/waitFor`` so Pulumi waits for the sync, not just for its creation)."""
    backoff_limit: int
    """Retries after a failed run (default 2): a database still starting gets a second chance."""
    active_deadline_seconds: int
    """Upper bound for the whole run, retries included (default 600)."""
    ttl_seconds_after_finished: int
    """Seconds a finished Job (and its logs) stays before Kubernetes deletes it (default 86400)."""
    operator: Optional[pulumi.Resource]
    """``operator`` mode: an Atlas Operator already installed (one per cluster); default: install it."""
    operator_namespace: str
    """``operator`` mode: namespace for the operator this component installs (default ``atlas-operator``)."""
    labels: dict[str, str]
    """Extra labels on every object."""


class AtlasMigrations(pulumi.ComponentResource):
    """Applies a local Atlas migration directory to the database behind the app Secret.

    Example::

        AtlasMigrations("schema", {"namespace": "app", "migrations_dir": "migrations",
                                   "depends_on": [db, app_secret]},
                        pulumi.ResourceOptions(providers={"kubernetes": provider}))

    The files travel in an immutable ConfigMap named after their hash, and in ``job`` mode so
    does the Job (with ``run_key`` folded in): a changed migration set, or a new target database,
    runs a new Job; an unchanged one runs none.
    """

    directory_hash: pulumi.Output[str]
    """Hash of the migration files (names and bytes), as carried by the object names."""
    config_map_name: pulumi.Output[str]
    job_name: pulumi.Output[Optional[str]]
    """``job`` mode: the Job's name; None in ``operator`` mode."""
    atlas_migration_name: pulumi.Output[Optional[str]]
    """``operator`` mode: the AtlasMigration's name; None in ``job`` mode."""

    def __init__(self, name: str, args: AtlasMigrationsArgs, opts: Optional[pulumi.ResourceOptions] = None):
        # Every check (and reading the files) before super().__init__: bad input registers nothing.
        mode = args.get("mode", "job")
        if mode not in MODES:
            raise ValueError(f"AtlasMigrations.mode: {mode!r} is not one of {', '.join(MODES)}")
        if not args.get("migrations_dir"):
            raise ValueError("AtlasMigrations.migrations_dir: give the local Atlas migration directory")
        if "namespace" not in args:
            raise ValueError("AtlasMigrations.namespace: give the namespace of the app Secret")
        migrations_dir = Path(args["migrations_dir"])
        if not migrations_dir.is_dir():
            raise ValueError(f"AtlasMigrations.migrations_dir: {str(migrations_dir)!r} is not a directory")
        # Read and verified at program time: a tampered atlas.sum fails the preview, not a Pod.
        files = read_migrations_dir(migrations_dir)
        digest = directory_hash(files)
        job_name = _folded("AtlasMigrations", f"{name}-migrate-", digest, directory_hash(files, 64),
                           args.get("run_key"))
        super().__init__("pgtiers:index:AtlasMigrations", name, None, opts)
        namespace = args["namespace"]
        secret_name = args.get("secret_name", "database")
        labels = {"app.kubernetes.io/part-of": "pgtiers", "app.kubernetes.io/component": "schema-migrations",
                  "app.kubernetes.io/instance": name, "pgtiers.dev/migrations-hash": digest,
                  **(args.get("labels") or {})}
        after = _after(args.get("depends_on"), args.get("ready_after"))

        config_map = k8s.core.v1.ConfigMap(
            f"{name}-files",
            # Named by the files alone, never by run_key: the same files are the same ConfigMap.
            metadata={"name": f"{name}-migrations-{digest}", "namespace": namespace, "labels": labels},
            data=files,
            # Named by content and immutable: a Job that is still running never sees its files change.
            immutable=True,
            opts=pulumi.ResourceOptions(parent=self))

        self.directory_hash = pulumi.Output.from_input(digest)
        self.config_map_name = config_map.metadata.name
        if mode == "job":
            job = self._job(name, job_name, args, namespace, secret_name, config_map, labels, after)
            self.job_name = job.metadata.name
            self.atlas_migration_name = pulumi.Output.from_input(None)
        else:
            migration = self._atlas_migration(name, args, namespace, secret_name, config_map, labels, after)
            self.job_name = pulumi.Output.from_input(None)
            # A custom resource's metadata comes back as a plain map, not a typed ObjectMeta.
            self.atlas_migration_name = migration.metadata.apply(lambda m: (m or {}).get("name"))
        self.register_outputs({"directory_hash": self.directory_hash, "config_map_name": self.config_map_name,
                               "job_name": self.job_name, "atlas_migration_name": self.atlas_migration_name})

    def _job(self, name: str, job_name: pulumi.Input[str], args: AtlasMigrationsArgs,
             namespace: pulumi.Input[str], secret_name: str, config_map: k8s.core.v1.ConfigMap,
             labels: dict[str, str], after: list[pulumi.Resource]) -> k8s.batch.v1.Job:
        deadline = args.get("active_deadline_seconds", 600)
        # The project file in a ConfigMap of its own: the migrations ConfigMap stays exactly the
        # directory Atlas verifies (and the operator mode reads), named by the files alone.
        project_file = k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata={"name": f"{name}-atlas-config-{short_hash(ATLAS_CONFIG)}", "namespace": namespace,
                      "labels": labels},
            data={CONFIG_KEY: ATLAS_CONFIG}, immutable=True,
            opts=pulumi.ResourceOptions(parent=self))
        container = {
            "name": "atlas",
            "image": args.get("image") or ATLAS_IMAGE,
            # No URL here: the project file reads it with getenv("DATABASE_URL_DIRECT"), so it is
            # never part of the process's arguments (readable on the node in /proc/<pid>/cmdline).
            "args": ["migrate", "apply", "--config", f"file://{CONFIG_MOUNT}/{CONFIG_KEY}", "--env", ATLAS_ENV],
            "env": [
                {"name": DIRECT_URL_KEY,
                 "valueFrom": {"secretKeyRef": {"name": secret_name, "key": DIRECT_URL_KEY}}},
                # A read-only root filesystem: Atlas keeps its small state under $HOME.
                {"name": "HOME", "value": "/tmp"},
                # No release check and no telemetry: the Job talks to the database and nothing else.
                {"name": "ATLAS_NO_UPDATE_NOTIFIER", "value": "true"},
                {"name": "ATLAS_NO_ANON_TELEMETRY", "value": "true"},
            ],
            "volumeMounts": [{"name": "migrations", "mountPath": MIGRATIONS_MOUNT, "readOnly": True},
                             {"name": "config", "mountPath": CONFIG_MOUNT, "readOnly": True}],
            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
            # Atlas's error (which file, which statement) becomes the Pod's termination message.
            "terminationMessagePolicy": "FallbackToLogsOnError",
        }
        return run_once_job(
            f"{name}-job", job_name=job_name, namespace=namespace, labels=labels, uid=ATLAS_UID,
            container=container,
            volumes=[{"name": "migrations", "configMap": {"name": config_map.metadata.name, "defaultMode": 0o444}},
                     {"name": "config", "configMap": {"name": project_file.metadata.name, "defaultMode": 0o444}}],
            tmp_size="64Mi",
            backoff_limit=args.get("backoff_limit", 2),
            active_deadline_seconds=deadline,
            # Re-created only by `pulumi refresh` noticing it gone: a re-run is a no-op, because
            # Atlas skips the versions its revisions table already holds.
            ttl_seconds_after_finished=args.get("ttl_seconds_after_finished", 86400),
            parent=self, depends_on=after,
            # Pulumi's wait must outlast Kubernetes' deadline, or it gives up on a healthy run.
            custom_timeouts=pulumi.CustomTimeouts(create=f"{deadline + 120}s", update=f"{deadline + 120}s"))

    def _atlas_migration(self, name: str, args: AtlasMigrationsArgs, namespace: pulumi.Input[str],
                         secret_name: str, config_map: k8s.core.v1.ConfigMap, labels: dict[str, str],
                         after: list[pulumi.Resource]) -> CustomObject:
        operator = args.get("operator")
        if operator is None:
            operator_ns_name = args.get("operator_namespace", ATLAS_OPERATOR_NAMESPACE)
            operator_ns = k8s.core.v1.Namespace(
                f"{name}-operator-ns",
                metadata={"name": operator_ns_name, "labels": {"app.kubernetes.io/part-of": "pgtiers"}},
                opts=pulumi.ResourceOptions(parent=self))
            # Helm waits for the operator Deployment, so the CRDs and controller exist afterwards.
            operator = k8s.helm.v3.Release(
                f"{name}-operator",
                chart=ATLAS_OPERATOR_CHART,
                version=ATLAS_OPERATOR_CHART_VERSION,
                namespace=operator_ns.metadata.name,
                # The release owns the CRDs (the default, stated): share it through `operator` rather
                # than installing a second release, which would fight over them.
                values={"crds": {"create": True}},
                opts=pulumi.ResourceOptions(parent=self))
        spec = {
            "urlFrom": {"secretKeyRef": {"name": secret_name, "key": DIRECT_URL_KEY}},
            "dir": {"configMapRef": {"name": config_map.metadata.name}},
            "revisionsSchema": REVISIONS_SCHEMA,
            "execOrder": "linear",
            "backoffLimit": args.get("backoff_limit", 2),
        }
        return CustomObject(
            f"{name}-migration", "db.atlasgo.io/v1alpha1", "AtlasMigration",
            metadata={"name": f"{name}-migrations", "namespace": namespace, "labels": labels,
                      # Without it Pulumi considers the resource done once created, before any apply.
                      "annotations": {"pulumi.com/waitFor": "condition=Ready"}},
            spec=spec,
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[operator, *after],
                custom_timeouts=pulumi.CustomTimeouts(
                    create=f"{args.get('active_deadline_seconds', 600) + 120}s",
                    update=f"{args.get('active_deadline_seconds', 600) + 120}s")))


# --- ConnectivityCheck ------------------------------------------------------------------------

# POSIX sh for the Debian `postgres` image. Kubernetes expands $(NAME) in command and args, so the
# script uses backticks for command substitution and never writes a dollar-parenthesis.
CHECK_SCRIPT = r"""set -u
failed=0
password="${PGPASSWORD:-}"

redact() {
  # Never echo a credential. libpq quotes a malformed URL or connection string (or the bad part of
  # it) verbatim: cut those lines at the quote, and any URL anywhere; then drop any line that still
  # holds the raw password. Hosts, ports and user names stay: they are what a reader needs.
  sed -E -e '/(URI|connection info string|percent-encoded)/ s/".*$/"[redacted]/' \
         -e 's#[A-Za-z][A-Za-z0-9+.-]*://.*#[redacted URL]#' |
    { if [ -n "$password" ]; then grep -v -F -e "$password"; else cat; fi; } || true
}

url_psql() {
  # The URL alone: libpq would fill anything it lacks from PG*, hiding a broken URL.
  env -u PGHOST -u PGPORT -u PGDATABASE -u PGUSER -u PGPASSWORD -u PGSSLMODE \
    psql -X -q -A -t -v ON_ERROR_STOP=1 -c 'select 1' -c 'show server_version' "$1"
}

env_psql() {
  psql -X -q -A -t -v ON_ERROR_STOP=1 -c 'select 1' -c 'show server_version'
}

probe() {
  label="$1"; shift
  if "$@" >/tmp/probe.out 2>/tmp/probe.err; then
    echo "ok: $label connected; server_version `tail -n 1 /tmp/probe.out`"
  else
    echo "FAILED: $label could not connect:"
    redact </tmp/probe.err | sed 's/^/  /'
    failed=1
  fi
}

probe "DATABASE_URL (the app's URL, pooled where the tier has a pooler)" url_psql "$DATABASE_URL"
probe "DATABASE_URL_DIRECT (the migrations URL, never pooled)" url_psql "$DATABASE_URL_DIRECT"
probe "PG* variables (PGHOST PGPORT PGDATABASE PGUSER PGPASSWORD PGSSLMODE)" env_psql

if [ "$failed" -ne 0 ]; then
  echo "connectivity check failed: Secret $PGTIERS_SECRET does not reach its database (see above)"
  exit 1
fi
echo "connectivity check passed for Secret $PGTIERS_SECRET"
"""


class ConnectivityCheckArgs(TypedDict, total=False):
    namespace: pulumi.Input[str]
    """App namespace holding the Secret; the Job runs there, as the app would."""
    secret_name: str
    """Name of the app Secret (default ``database``)."""
    version: Union[int, str]
    """PostgreSQL version of the server (default 18; ``"16.4"`` counts as 16): picks the pinned
    official ``postgres`` image of that major, or the newest pinned one when that major has none."""
    image: str
    """Override the image (keep it pinned; it needs ``psql``, ``sh`` and coreutils ``env``)."""
    run_id: str
    """Changes the Job's name: set a new value (e.g. a timestamp) to re-run the check on this
    ``pulumi up``; keep it to run the check only when the Secret (``run_key``), its location or the
    check changes."""
    run_key: pulumi.Input[str]
    """Changes when the target database or the Secret's content changes (e.g. a short hash of the
    Secret's data): a new host, password or sslmode is checked again. It ends up in the Job's name,
    so it must not be secret. Default: none, the check follows the Secret's location only."""
    depends_on: Sequence[pulumi.Resource]
    """The Secret (and anything it waits for, e.g. the database or an ExternalSecret)."""
    backoff_limit: int
    """Retries after a failure (default 1): one retry absorbs a database that is still starting."""
    active_deadline_seconds: int
    """Upper bound for the whole check, retries included (default 180)."""
    ttl_seconds_after_finished: int
    """Seconds a finished Job (and its logs) stays before Kubernetes deletes it (default 86400)."""
    labels: dict[str, str]
    """Extra labels on the Job."""


class ConnectivityCheck(pulumi.ComponentResource):
    """Proves from inside the app namespace that the app Secret really connects.

    Connects with ``DATABASE_URL``, with ``DATABASE_URL_DIRECT`` and with the ``PG*`` variables
    (``select 1`` and ``show server_version`` each), so a wrong host, port, password, sslmode or
    pooler setting fails ``pulumi up`` with a line that says which one failed.

    Example::

        ConnectivityCheck("db-check", {"namespace": "app", "version": 18, "depends_on": [app_secret]},
                          pulumi.ResourceOptions(providers={"kubernetes": provider}))

    The Job's name is a hash of everything it depends on (namespace, Secret name, image, script,
    ``run_id``, ``run_key``): the check runs again exactly when one of them changes.
    """

    job_name: pulumi.Output[str]

    def __init__(self, name: str, args: ConnectivityCheckArgs, opts: Optional[pulumi.ResourceOptions] = None):
        default_image = psql_image(args.get("version", 18), "ConnectivityCheck.version")
        if "namespace" not in args:
            raise ValueError("ConnectivityCheck.namespace: give the namespace of the app Secret")
        # The name gets a 10-character hash suffix; check the longest it can be, before registering.
        _job_name("ConnectivityCheck", f"{name}-{'0' * 10}")
        super().__init__("pgtiers:index:ConnectivityCheck", name, None, opts)
        image = args.get("image") or default_image
        secret_name = args.get("secret_name", "database")
        run_id = args.get("run_id", "")
        run_key = args.get("run_key")
        namespace = pulumi.Output.from_input(args["namespace"])
        deadline = args.get("active_deadline_seconds", 180)

        def job_name(ns: str, key: Optional[str]) -> str:
            # Everything a Job's immutable template depends on is in the name, so a change makes
            # a new Job (a new run) rather than an update Kubernetes would refuse. Without a run
            # key the name is the one a stack had before run keys existed.
            parts = [ns, secret_name, run_id, image, CHECK_SCRIPT] + ([] if key is None else [str(key)])
            digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()
            return f"{name}-{digest[:10]}"

        labels = {"app.kubernetes.io/part-of": "pgtiers", "app.kubernetes.io/component": "connectivity-check",
                  "app.kubernetes.io/instance": name, **(args.get("labels") or {})}
        container = {
            "name": "check",
            "image": image,
            "command": ["sh", "-c", CHECK_SCRIPT],
            # The whole Secret, as an app with envFrom sees it: the check proves that exact view.
            "envFrom": [{"secretRef": {"name": secret_name}}],
            "env": [
                {"name": "PGTIERS_SECRET", "value": namespace.apply(lambda ns: f"{ns}/{secret_name}")},
                # A wrong host or a blocked port fails in seconds instead of hanging to the deadline.
                {"name": "PGCONNECT_TIMEOUT", "value": "10"},
                {"name": "PGAPPNAME", "value": "pgtiers-connectivity-check"},
                {"name": "HOME", "value": "/tmp"},
            ],
            "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
            # The FAILED lines become the Pod's termination message, visible without reading logs.
            "terminationMessagePolicy": "FallbackToLogsOnError",
        }
        job = run_once_job(
            f"{name}-job", job_name=pulumi.Output.all(namespace, run_key).apply(lambda a: job_name(*a)),
            namespace=namespace, labels=labels,
            uid=POSTGRES_UID, container=container, tmp_size="16Mi",
            backoff_limit=args.get("backoff_limit", 1),
            active_deadline_seconds=deadline,
            ttl_seconds_after_finished=args.get("ttl_seconds_after_finished", 86400),
            parent=self, depends_on=args.get("depends_on") or [],
            custom_timeouts=pulumi.CustomTimeouts(create=f"{deadline + 60}s", update=f"{deadline + 60}s"))
        self.job_name = job.metadata.name
        self.register_outputs({"job_name": self.job_name})
