"""The rules an Aurora PostgreSQL Serverless v2 cluster's settings must follow, as plain Python.

Kept apart from ``aurora.py`` (no Pulumi or AWS imports) so the stack settings can run the very
same checks while parsing config, and a bad value stops the program before anything registers.
Each rule raises ``AuroraArgumentError`` naming the argument, the bad value and what is allowed;
``AuroraServerlessDb`` shows it as ``AuroraServerlessDb.<arg>: ...`` and the stack settings as
``pgtiers:database.<key>: ...``.

Sources: the RDS API reference (CreateDBCluster, ModifyCurrentDBClusterCapacity) and the Aurora
user guide's Serverless v2 pages; the values below are the documented limits, not guesses.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Optional

#: Aurora PostgreSQL majors pgtiers builds parameter groups for (family ``aurora-postgresql<major>``).
ENGINE_MAJORS = (13, 14, 15, 16, 17)

#: First minor of each major whose Serverless v2 instances can scale to 0 ACU (auto-pause).
AUTO_PAUSE_MINORS = {13: 15, 14: 12, 15: 7, 16: 3}

ACU_MIN, ACU_MAX, ACU_STEP = 0.0, 256.0, 0.5
AUTO_PAUSE_SECONDS = (300, 86400)
MAX_INSTANCES = 16  # one writer plus up to 15 Aurora Replicas
BACKUP_RETENTION_DAYS = (1, 35)
MONITORING_INTERVALS = (0, 1, 5, 10, 15, 30, 60)
#: CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827,
                      2192, 2557, 2922, 3288, 3653)
MIN_WINDOW_MINUTES = 30

# PostgreSQL's fully reserved key words plus the names RDS keeps for itself; RDS refuses them
# as the master user name ("is a reserved word used by the engine").
RESERVED_NAMES = frozenset("""
    all analyse analyze and any array as asc asymmetric authorization binary both case cast check
    collate collation column concurrently constraint create cross current_catalog current_date
    current_role current_schema current_time current_timestamp current_user default deferrable desc
    distinct do else end except false fetch for foreign freeze from full grant group having ilike in
    initially inner intersect into is isnull join lateral leading left like limit localtime
    localtimestamp natural not notnull null offset on only or order outer overlaps placing primary
    references returning right select session_user similar some symmetric system_user table
    tablesample then to trailing true union unique user using variadic verbose when where window with
    admin rdsadmin rdsrepladmin rds_superuser rds_replication rdstopmgr public
""".split())

_IDENTIFIER = re.compile(r"^[a-z][a-z0-9-]*$")
_MASTER_USER = re.compile(r"^[a-z][a-z0-9]*$")
_DATABASE = re.compile(r"^[a-z][a-z0-9_]*$")
_VERSION = re.compile(r"^(\d+)(?:\.(\d+))?$")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = r"([01]\d|2[0-3]):([0-5]\d)"
_BACKUP_WINDOW = re.compile(rf"^{_CLOCK}-{_CLOCK}$")
_MAINTENANCE_WINDOW = re.compile(rf"^({'|'.join(_DAYS)}):{_CLOCK}-({'|'.join(_DAYS)}):{_CLOCK}$")


class AuroraArgumentError(ValueError):
    """One argument breaks an Aurora rule. ``message`` reads after the value: ``0.3 <message>``."""

    def __init__(self, field: str, value: Any, message: str):
        super().__init__(f"{field}: {value!r} {message}")
        self.field, self.value, self.message = field, value, message


def parse_engine_version(version: Any) -> tuple[int, Optional[int]]:
    """``"16"`` → (16, None); ``"16.4"`` → (16, 4). Raises for anything else."""
    match = _VERSION.match(str(version).strip()) if isinstance(version, (int, str)) and not isinstance(version, bool) else None
    if not match:
        raise AuroraArgumentError("engine_version", version, "is not an Aurora PostgreSQL version: give the major "
                                  f"({', '.join(map(str, ENGINE_MAJORS))}), optionally with the oldest minor the "
                                  "cluster runs (e.g. 16 or \"16.4\")")
    major, minor = int(match.group(1)), (int(match.group(2)) if match.group(2) is not None else None)
    if major not in ENGINE_MAJORS:
        raise AuroraArgumentError("engine_version", version, "is not a supported Aurora PostgreSQL major; allowed: "
                                  + ", ".join(map(str, ENGINE_MAJORS)))
    return major, minor


def can_auto_pause(major: int, minor: Optional[int]) -> bool:
    # With the major alone, RDS creates the cluster at that major's current default minor, which
    # has been at or above every minimum below since the feature shipped (Nov 2024). A minor that
    # is stated is the floor the cluster is known to run, so it is checked.
    if minor is None or major not in AUTO_PAUSE_MINORS:
        return True
    return minor >= AUTO_PAUSE_MINORS[major]


def check_identifier(field: str, value: Any, max_length: int = 63) -> None:
    """RDS identifiers: lowercase letters, digits, hyphens; a letter first; no ``--``; no trailing ``-``."""
    allowed = (f"is not an RDS identifier (lowercase letters, digits and '-', starting with a letter, "
               f"at most {max_length} characters, no '--' and no trailing '-')")
    if not isinstance(value, str) or not _IDENTIFIER.match(value) or len(value) > max_length \
            or "--" in value or value.endswith("-"):
        raise AuroraArgumentError(field, value, allowed)


def check_master_username(value: Any, field: str = "master_username") -> None:
    if not isinstance(value, str) or not _MASTER_USER.match(value) or len(value) > 16:
        raise AuroraArgumentError(field, value, "is not an Aurora master user name (1-16 lowercase letters or "
                                  "digits, starting with a letter)")
    if value in RESERVED_NAMES:
        raise AuroraArgumentError(field, value, "is a name RDS reserves for PostgreSQL or itself; pick another")


def check_database_name(value: Any, field: str = "database_name") -> None:
    if not isinstance(value, str) or not _DATABASE.match(value) or len(value) > 63:
        raise AuroraArgumentError(field, value, "is not an Aurora database name (1-63 lowercase letters, digits "
                                  "or '_', starting with a letter)")
    if value in RESERVED_NAMES:
        raise AuroraArgumentError(field, value, "is a PostgreSQL reserved word; pick another")


def check_capacity(min_acu: Any, max_acu: Any, seconds_until_auto_pause: Any, engine_version: Any) -> None:
    for field, value, low in (("min_acu", min_acu, ACU_MIN), ("max_acu", max_acu, 1.0)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise AuroraArgumentError(field, value, "is not a number of ACUs")
        if not ACU_MIN <= value <= ACU_MAX:
            raise AuroraArgumentError(field, value, f"is outside {ACU_MIN:g}-{ACU_MAX:g} ACUs")
        if (value / ACU_STEP) != int(value / ACU_STEP):
            raise AuroraArgumentError(field, value, f"is not a multiple of {ACU_STEP} (Serverless v2 scales in "
                                      "half-ACU steps)")
        if value < low:
            raise AuroraArgumentError(field, value, f"is below {low:g}, the smallest maximum Serverless v2 "
                                      "accepts")
    if min_acu > max_acu:
        raise AuroraArgumentError("min_acu", min_acu, f"is above max_acu ({max_acu:g}); the minimum must not "
                                  "exceed the maximum")
    major, minor = parse_engine_version(engine_version)
    if min_acu == 0 and not can_auto_pause(major, minor):
        floor = f"{major}.{AUTO_PAUSE_MINORS[major]}"
        raise AuroraArgumentError("min_acu", min_acu, f"needs auto-pause, which Aurora PostgreSQL {engine_version} "
                                  f"lacks; use 0.5 or more, or run {floor} or later")
    if seconds_until_auto_pause is not None:
        low, high = AUTO_PAUSE_SECONDS
        if isinstance(seconds_until_auto_pause, bool) or not isinstance(seconds_until_auto_pause, int) \
                or not low <= seconds_until_auto_pause <= high:
            raise AuroraArgumentError("seconds_until_auto_pause", seconds_until_auto_pause,
                                      f"is outside {low}-{high} seconds")
        if min_acu != 0:
            raise AuroraArgumentError("seconds_until_auto_pause", seconds_until_auto_pause,
                                      f"only applies when min_acu is 0 (it is {min_acu:g}); remove it or set "
                                      "min_acu to 0")


def _minutes(hh: str, mm: str) -> int:
    return int(hh) * 60 + int(mm)


def _span(start: int, end: int, period: int) -> int:
    return (end - start) % period


def check_windows(backup_window: Any, maintenance_window: Any) -> None:
    backup = _BACKUP_WINDOW.match(backup_window) if isinstance(backup_window, str) else None
    if not backup:
        raise AuroraArgumentError("preferred_backup_window", backup_window, "is not a UTC window hh24:mi-hh24:mi "
                                  "(e.g. \"03:00-04:00\")")
    b_start, b_end = _minutes(*backup.group(1, 2)), _minutes(*backup.group(3, 4))
    if _span(b_start, b_end, 1440) < MIN_WINDOW_MINUTES:
        raise AuroraArgumentError("preferred_backup_window", backup_window,
                                  f"is shorter than {MIN_WINDOW_MINUTES} minutes")
    maint = _MAINTENANCE_WINDOW.match(maintenance_window.lower()) if isinstance(maintenance_window, str) else None
    if not maint:
        raise AuroraArgumentError("preferred_maintenance_window", maintenance_window,
                                  "is not a UTC window ddd:hh24:mi-ddd:hh24:mi (e.g. \"sun:05:00-sun:06:00\")")
    week = 7 * 1440
    m_start = _DAYS.index(maint.group(1)) * 1440 + _minutes(maint.group(2), maint.group(3))
    m_end = _DAYS.index(maint.group(4)) * 1440 + _minutes(maint.group(5), maint.group(6))
    if _span(m_start, m_end, week) < MIN_WINDOW_MINUTES:
        raise AuroraArgumentError("preferred_maintenance_window", maintenance_window,
                                  f"is shorter than {MIN_WINDOW_MINUTES} minutes")
    # RDS rejects a maintenance window that overlaps the (daily) backup window.
    for day in range(7):
        start = day * 1440 + b_start
        length = _span(b_start, b_end, 1440)
        if _overlaps(start, length, m_start, _span(m_start, m_end, week), week):
            raise AuroraArgumentError("preferred_maintenance_window", maintenance_window,
                                      f"overlaps the daily backup window {backup_window}; RDS needs them apart")


def _overlaps(a_start: int, a_len: int, b_start: int, b_len: int, period: int) -> bool:
    # Compare on a circular timeline: shift b so that a starts at 0.
    offset = (b_start - a_start) % period
    return offset < a_len or (offset + b_len) > period


def check_counts(instances: Any, backup_retention_days: Any, monitoring_interval: Any, log_retention_days: Any,
                 performance_insights_retention_days: Any) -> None:
    def whole(field: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise AuroraArgumentError(field, value, "is not a whole number")
        return value

    if not 1 <= whole("instances", instances) <= MAX_INSTANCES:
        raise AuroraArgumentError("instances", instances, f"is outside 1-{MAX_INSTANCES} (one writer plus up to "
                                  "15 readers)")
    low, high = BACKUP_RETENTION_DAYS
    if not low <= whole("backup_retention_days", backup_retention_days) <= high:
        raise AuroraArgumentError("backup_retention_days", backup_retention_days, f"is outside {low}-{high} days")
    if whole("monitoring_interval", monitoring_interval) not in MONITORING_INTERVALS:
        raise AuroraArgumentError("monitoring_interval", monitoring_interval, "is not one of "
                                  + ", ".join(map(str, MONITORING_INTERVALS)) + " seconds (0 turns it off)")
    if whole("log_retention_days", log_retention_days) not in LOG_RETENTION_DAYS:
        raise AuroraArgumentError("log_retention_days", log_retention_days, "is not a CloudWatch Logs retention; "
                                  "allowed: " + ", ".join(map(str, LOG_RETENTION_DAYS)))
    pi = whole("performance_insights_retention_days", performance_insights_retention_days)
    if not (pi in (7, 731) or (31 <= pi <= 713 and pi % 31 == 0)):
        raise AuroraArgumentError("performance_insights_retention_days", pi,
                                  "is not a Performance Insights retention (7, a multiple of 31 up to 713, or 731)")


#: Every argument the rules read, with the default ``AuroraServerlessDb`` uses when it is absent.
DEFAULTS: Mapping[str, Any] = {
    "engine_version": "16",
    "database_name": "app",
    "master_username": "app",
    "min_acu": 0.5,
    "max_acu": 4.0,
    "seconds_until_auto_pause": None,
    "instances": 1,
    "backup_retention_days": 7,
    "preferred_backup_window": "03:00-04:00",
    "preferred_maintenance_window": "sun:05:00-sun:06:00",
    "monitoring_interval": 0,
    "log_retention_days": 30,
    "performance_insights_retention_days": 7,
}


def check_all(values: Mapping[str, Any], identifier: Optional[str] = None) -> None:
    """Run every rule on ``values`` (Args names; absent keys take ``DEFAULTS``)."""
    v = {**DEFAULTS, **{k: val for k, val in values.items() if k in DEFAULTS and val is not None}}
    if "seconds_until_auto_pause" in values:
        v["seconds_until_auto_pause"] = values["seconds_until_auto_pause"]
    if identifier is not None:
        check_identifier("identifier", identifier)
    parse_engine_version(v["engine_version"])
    check_database_name(v["database_name"])
    check_master_username(v["master_username"])
    check_capacity(v["min_acu"], v["max_acu"], v["seconds_until_auto_pause"], v["engine_version"])
    check_counts(v["instances"], v["backup_retention_days"], v["monitoring_interval"], v["log_retention_days"],
                 v["performance_insights_retention_days"])
    check_windows(v["preferred_backup_window"], v["preferred_maintenance_window"])
