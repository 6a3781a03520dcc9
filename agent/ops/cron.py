"""The cluster's scheduler list as /etc/cron.d/hostfleet."""

from __future__ import annotations

from pathlib import Path

from croniter import croniter

from agent import fsutil
from agent import validation as v
from agent.ops import apply

LIST_NAME = "scheduler"
CRON_FILE = "etc/cron.d/hostfleet"
ROW_FIELDS = ("id", "schedule", "user", "command", "comment", "enabled")


def validate_row(row: object, users: set[str] | None = None) -> dict:
    """One scheduler entry, normalized; the user must exist on this node when users is given."""
    row = v.object_fields(row, "row", ROW_FIELDS)
    entry = {
        "id": v.integer(row.get("id"), "id", 0, 2**63 - 1),
        "schedule": v.cron_schedule(row.get("schedule"), "schedule"),
        "user": v.username(row.get("user", "root"), "user"),
        "command": v.cron_command(row.get("command"), "command"),
        "comment": v.comment(row.get("comment", "")),
        "enabled": v.boolean(row.get("enabled", True), "enabled"),
    }
    if users is not None and entry["user"] not in users:
        raise v.ValidationError("user", f"no account {entry['user']!r} on this node")
    return entry


def render(entries: list[dict]) -> bytes:
    """The cron.d file; % is escaped because cron turns a bare % into a newline."""
    return apply.render(
        "cron.j2",
        entries=[{**e, "command": e["command"].replace("%", "\\%")} for e in entries],
    )


def check_cron_file(path: Path) -> None:
    """Parse the written file the way cron does: every job line has a schedule, user, command."""
    for number, line in enumerate(path.read_text().splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if "=" in stripped.split(" ", 1)[0]:
            continue
        nickname = stripped.startswith("@")
        fields = stripped.split(None, 2 if nickname else 6)
        if len(fields) != (3 if nickname else 7):
            raise apply.CheckFailed("cron", f"{path}:{number}: expected a user and a command")
        schedule = fields[0] if nickname else " ".join(fields[:5])
        if schedule not in v.CRON_NICKNAMES and not croniter.is_valid(schedule):
            raise apply.CheckFailed("cron", f"{path}:{number}: bad schedule {schedule!r}")


def apply_entries(config, rows: list[dict]) -> apply.Result:
    """Validate, render, check, write /etc/cron.d/hostfleet; idempotent."""
    users = apply.known_users(config)
    entries = apply.validate_rows(rows, lambda row: validate_row(row, users))
    path = apply.under_root(config, CRON_FILE)
    current = {path: data} if (data := fsutil.read_or_none(path)) is not None else {}
    # Only cron (root) reads it; job lines often carry passwords, and every customer has a shell. A file
    # written 0644 before is closed too, even when its content does not change.
    result = apply.apply_files(
        config, {path: render(entries)}, current, lambda _w: check_cron_file(path), ["cron"], {path: 0o600}
    )
    if not apply.dry_run() and path.exists() and path.stat().st_mode & 0o077:
        path.chmod(0o600)
    return result


def replace(config, version: int, content_hash: str, rows: list):
    """PUT /v1/lists/scheduler: apply the full list and record its version and hash."""
    return apply.replace_list(config, LIST_NAME, version, content_hash, rows, apply_entries)
