"""Version and content hash of every system-wide list the agent holds."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

STATE_FILE = "lists.json"


def list_hash(rows: list[dict]) -> str:
    """Content hash of a list's rows, the same on the master and on every agent."""
    canonical = json.dumps(rows, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def read_all(state_dir: Path) -> dict[str, dict]:
    """Every list's {"version", "hash"} as last recorded, {} when nothing was applied yet."""
    path = Path(state_dir) / STATE_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}


def record(state_dir: Path, name: str, version: int, content_hash: str) -> None:
    """Record the version and hash a list now holds (atomic replace of the state file)."""
    state = read_all(state_dir)
    state[name] = {"version": version, "hash": content_hash}
    path = Path(state_dir) / STATE_FILE
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as fh:
        json.dump(state, fh, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
