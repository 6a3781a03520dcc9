"""The shared write path of every operation: diff, write, check, reload, roll back."""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import subprocess
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from agent import fsutil, liststate
from agent.failpoints import failpoint
from agent.validation import ValidationError

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
CHECK_TIMEOUT_S = 120
# One operation at a time per agent process: the checkers read the whole tree they validate.
OP_LOCK = threading.RLock()

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=False,
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


# While set, apply_files only tells whether the files differ from what would be written.
_dry_run = contextvars.ContextVar("dry_run", default=False)


def dry_run() -> bool:
    """True inside a drift check: compute what would change, change nothing."""
    return _dry_run.get()


@contextlib.contextmanager
def comparing_only():
    """Run operations so that they only report whether anything would change."""
    token = _dry_run.set(True)
    try:
        yield
    finally:
        _dry_run.reset(token)


class OpError(Exception):
    """A checker refused the rendered files or a reload failed; the old files are back."""

    status = 422

    def __init__(self, service: str, message: str):
        super().__init__(f"{service}: {message}")
        self.service = service
        self.message = message


class CheckFailed(OpError):
    """The service's own checker refused the rendered configuration."""


class ReloadFailed(OpError):
    """The reload command failed after the files were written."""

    status = 502


class NotFound(Exception):
    """The named object does not exist on this node."""

    def __init__(self, what: str, name: str):
        super().__init__(f"{what} {name!r} not found")


class Conflict(Exception):
    """The request contradicts what the node holds (exists already, still in use)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass
class Result:
    """What an operation changed: relative paths written and removed."""

    changed: bool = False
    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def render(template: str, **context: object) -> bytes:
    """Render one template from agent/templates to bytes."""
    return _env.get_template(template).render(**context).encode("utf-8")


def under_root(config, relative: str) -> Path:
    """A path inside the agent's root prefix."""
    return Path(config.root) / relative.lstrip("/")


def known_users(config) -> set[str]:
    """Account names in the root prefix's /etc/passwd."""
    data = fsutil.read_or_none(under_root(config, "etc/passwd")) or b""
    names = {line.split(":", 1)[0] for line in data.decode("utf-8", "replace").splitlines()}
    return {name for name in names if name} | {"root"}


def hosting_users(config) -> set[str]:
    """Hosting accounts in the root prefix's /etc/passwd: UID 1000 or more, never nobody (65534).
    Only these may own sites: a pool of root's or www-data's would run customer code as them."""
    data = fsutil.read_or_none(under_root(config, "etc/passwd")) or b""
    names = set()
    for line in data.decode("utf-8", "replace").splitlines():
        parts = line.split(":")
        if len(parts) > 2 and parts[2].isdigit() and 1000 <= int(parts[2]) < 2**31 and parts[2] != "65534":
            names.add(parts[0])
    return names


def run_checker(service: str, argv: list[str]) -> str:
    """Run a service's checker; raise CheckFailed with its own message when it refuses."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=CHECK_TIMEOUT_S)
    except FileNotFoundError:
        raise CheckFailed(service, f"checker {argv[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise CheckFailed(service, f"checker {argv[0]} timed out") from None
    if proc.returncode != 0:
        raise CheckFailed(service, (proc.stderr or proc.stdout).strip() or f"exit {proc.returncode}")
    return proc.stdout


def reload_service(config, service: str) -> None:
    """Run the configured reload command for service (none configured: nothing to do)."""
    argv = config.reload_commands.get(service)
    if not argv:
        return
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=CHECK_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ReloadFailed(service, f"reload command failed: {exc}") from None
    if proc.returncode != 0:
        message = (proc.stderr or proc.stdout).strip() or f"exit {proc.returncode}"
        raise ReloadFailed(service, message)


def apply_files(
    config,
    desired: dict[Path, bytes],
    current: dict[Path, bytes],
    check: Callable[[dict[Path, bytes]], None] | None,
    services: Iterable[str],
    modes: dict[Path, int] | None = None,
) -> Result:
    """Make the managed files equal desired; check and reload, or put the old files back.

    `current` holds the managed files that exist now; any not in `desired` is removed.
    `check` gets the files written and raises CheckFailed; nothing is written if nothing differs.
    """
    writes = {p: d for p, d in desired.items() if current.get(p, fsutil.read_or_none(p)) != d}
    deletes = [p for p in current if p not in desired]
    if not writes and not deletes:
        return Result()
    if dry_run():
        return Result(changed=True)
    services = list(services)
    journal = journal_path(config)
    with OP_LOCK:
        snapshot = fsutil.Snapshot([*writes, *deletes])
        # Written before the first file changes and removed once the change is live or undone:
        # a crash in between leaves it behind, and the next start puts the old files back.
        snapshot.save(journal, services)
        reloaded = False
        try:
            fsutil.write_changes(writes, deletes, modes)
            failpoint("apply.after_write")
            if check is not None:
                check(writes)
            for service in services:
                reloaded = True
                reload_service(config, service)
        except BaseException:
            snapshot.restore()
            # Only a reload can have made the new files live; a refused check changed nothing.
            if reloaded:
                reload_quietly(config, services)
            fsutil.remove(journal)
            raise
        fsutil.remove(journal)
    root = Path(config.root)
    return Result(
        changed=True,
        written=sorted(_relative(root, p) for p in writes),
        removed=sorted(_relative(root, p) for p in deletes),
    )


def reload_quietly(config, services: Iterable[str]) -> None:
    """Reload services after their old files were put back; the original error is what gets reported."""
    for service in services:
        try:
            reload_service(config, service)
        except OpError:
            pass


def find_record(config, kind: str, name: str, what: str) -> dict:
    """One stored record of a kind by its name, or NotFound naming what was looked for."""
    for record in load_records(config, kind):
        if record["name"] == name:
            return record
    raise NotFound(what, name)


def journal_path(config) -> Path:
    """Where the undo journal of the change in progress lives."""
    return Path(config.state_dir) / "apply-journal.json"


def recover_interrupted(config) -> list[str]:
    """Roll back a change a crash interrupted (old files back, services reloaded); the paths restored."""
    journal = journal_path(config)
    if not journal.exists():
        return []
    snapshot, services = fsutil.Snapshot.load(journal)
    with OP_LOCK:
        snapshot.restore()
        reload_quietly(config, services)
        fsutil.remove(journal)
    return sorted(str(p) for p in snapshot.files)


def _relative(root: Path, path: Path) -> str:
    """A path shown relative to the root prefix when it lies inside it."""
    try:
        return "/" + str(Path(path).relative_to(root))
    except ValueError:
        return str(path)


def load_records(config, kind: str) -> list[dict]:
    """The user data of one kind held on this node (the agent is its source of truth)."""
    data = fsutil.read_or_none(Path(config.state_dir) / "data" / f"{kind}.json")
    return json.loads(data) if data else []


def save_records(config, kind: str, records: list[dict]) -> None:
    """Store the user data of one kind (mode 0600: mailbox hashes live here too)."""
    body = json.dumps(records, indent=1, sort_keys=True, ensure_ascii=False).encode()
    path = Path(config.state_dir) / "data" / f"{kind}.json"
    if fsutil.read_or_none(path) != body:
        fsutil.atomic_write(path, body, 0o600)


def purge_owner(config, kind: str, owner: str, commit: Callable[[object, list[dict]], object]) -> list[str]:
    """Remove every record of one kind an owner holds with a single commit (one check and reload,
    however many there are), as deleting the owner needs; the names removed."""
    with OP_LOCK:
        records = load_records(config, kind)
        gone = [r["name"] for r in records if r["owner"] == owner]
        if gone:
            commit(config, [r for r in records if r["owner"] != owner])
    return gone


def load_list_rows(config, name: str) -> list[dict]:
    """The rows of a system-wide list as last applied."""
    data = fsutil.read_or_none(Path(config.state_dir) / "lists" / f"{name}.json")
    return json.loads(data) if data else []


def check_list_envelope(version: object, content_hash: object, rows: object) -> None:
    """Refuse a list replace whose version, hash or rows are malformed or disagree."""
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise ValidationError("version", "must be a non-negative integer")
    if not isinstance(content_hash, str) or len(content_hash) != 64:
        raise ValidationError("hash", "must be a SHA-256 hex digest")
    if not isinstance(rows, list):
        raise ValidationError("rows", "must be a list")
    if liststate.list_hash(rows) != content_hash:
        raise ValidationError("hash", "does not match the rows sent")


def replace_list(
    config,
    name: str,
    version: int,
    content_hash: str,
    rows: list[dict],
    apply_rows: Callable[[object, list[dict]], Result],
) -> dict:
    """Apply a full list replace and record what the node now holds; idempotent."""
    check_list_envelope(version, content_hash, rows)
    with OP_LOCK:
        result = apply_rows(config, rows)
        held = liststate.read_all(Path(config.state_dir)).get(name)
        if held != {"version": version, "hash": content_hash}:
            body = json.dumps(rows, sort_keys=True, ensure_ascii=False).encode()
            fsutil.atomic_write(Path(config.state_dir) / "lists" / f"{name}.json", body, 0o600)
            liststate.record(Path(config.state_dir), name, version, content_hash)
    return {"name": name, "version": version, "hash": content_hash, "changed": result.changed}


def drifted(config, name: str, apply_rows: Callable[[object, list[dict]], Result]) -> bool:
    """True when the node's live files no longer match the list it recorded (edited behind its back).

    Under the op lock: a change half done (files written, the list not yet recorded) is never seen as drift.
    """
    try:
        with OP_LOCK, comparing_only():
            return apply_rows(config, load_list_rows(config, name)).changed
    except (ValidationError, OpError):
        # The recorded rows cannot be rendered here any more (a user gone, say): a re-push decides.
        return True


def read_list(config, name: str) -> dict:
    """The rows, version and hash of a list as this node holds it."""
    held = liststate.read_all(Path(config.state_dir)).get(name, {})
    rows = load_list_rows(config, name)
    return {
        "name": name,
        "version": held.get("version", 0),
        "hash": held.get("hash", liststate.list_hash(rows)),
        "rows": rows,
    }


def validate_rows(rows: list, validate_row: Callable[[object], dict]) -> list[dict]:
    """Validate every row, naming the failing one as rows[i].field."""
    clean = []
    for index, row in enumerate(rows):
        try:
            clean.append(validate_row(row))
        except ValidationError as exc:
            raise exc.within(f"rows[{index}]") from None
    return clean


def group_id(config, group: str) -> int | None:
    """The GID of a group in the root prefix's /etc/group, or None when it has no such group."""
    data = fsutil.read_or_none(under_root(config, "etc/group")) or b""
    for line in data.decode("utf-8", "replace").splitlines():
        parts = line.split(":")
        if len(parts) > 2 and parts[0] == group and parts[2].isdigit():
            return int(parts[2])
    return None


def close_folder(config, relative: str, group: str) -> None:
    """Make a folder of the agent's `root:<group> 0750`, so that only the service running in that group
    reads it, no customer's shell. Left as it is on a node without that group, when not root, or when the
    folder is missing; the folder is opened without following a link."""
    gid = group_id(config, group)
    folder = under_root(config, relative)
    if gid is None or os.geteuid() != 0 or not folder.is_dir():
        return
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.fchown(fd, 0, gid)
        os.fchmod(fd, 0o750)
    finally:
        os.close(fd)
