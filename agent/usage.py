"""Disk use per hosting user on this node: their home (web sites), their mail domains' maildirs and their
databases (MariaDB's data and index bytes).

Walking every file takes time on a full node, so /v1/stats never waits for it: it reports the last
finished measurement and, when that is older than REFRESH_S, starts a new one in a thread. The
master compares the figures with each user's disk quota before it accepts new sites or mailboxes.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from agent.homefs import tree_bytes

# How old a measurement may be before the next stats request starts another.
REFRESH_S = float(os.environ.get("HOSTFLEET_AGENT_USAGE_REFRESH_S") or 60)

_lock = threading.Lock()
# root -> (finished at, {owner: bytes}); root -> the thread measuring it now.
_measured: dict[str, tuple[float, dict[str, int]]] = {}
_running: dict[str, threading.Thread] = {}


def measure(config) -> dict[str, int]:
    """Bytes per owner of their data here: home/<owner>, the maildirs of their mail domains, their databases."""
    from agent.ops import apply, mail, web

    owners: dict[str, list[Path]] = {}
    for domain in web.list_domains(config):
        owners.setdefault(domain["owner"], [])
    mail_dir = apply.under_root(config, mail.MAIL_DIR)
    for domain in mail.list_domains(config):
        owners.setdefault(domain["owner"], []).append(mail_dir / domain["name"])
    used = {owner: tree_bytes(apply.under_root(config, f"home/{owner}")) + sum(tree_bytes(p) for p in maildirs)
            for owner, maildirs in owners.items()}
    for owner, size in database_bytes(config).items():
        used[owner] = used.get(owner, 0) + size
    return used


def database_bytes(config) -> dict[str, int]:
    """Bytes of data and indexes per owner of the databases held here. MariaDB not answering fails the whole
    measurement, so the last full one stays reported rather than one without the databases."""
    from agent.ops import db

    used: dict[str, int] = {}
    for record in db.list_databases(config):
        used[record["owner"]] = used.get(record["owner"], 0) + record.get("size", 0)
    return used


def _refresh(config, key: str) -> None:
    try:
        result = measure(config)
        with _lock:
            _measured[key] = (time.time(), result)
    finally:
        with _lock:
            _running.pop(key, None)


def report(config, now: float | None = None) -> dict:
    """The last measurement ({"measured_at": epoch seconds or None, "owners": {name: bytes}}), starting
    a new one in the background when it is missing or older than REFRESH_S."""
    key = str(config.root)
    now = time.time() if now is None else now
    with _lock:
        at, owners = _measured.get(key, (None, {}))
        stale = at is None or now - at >= REFRESH_S
        if stale and key not in _running:
            thread = threading.Thread(target=_refresh, args=(config, key), name="disk-usage", daemon=True)
            _running[key] = thread
            thread.start()
    return {"measured_at": at, "owners": dict(owners)}


def wait_idle(config, timeout: float = 30.0) -> None:
    """Wait for a measurement in progress to finish (for tests and tools)."""
    with _lock:
        thread = _running.get(str(config.root))
    if thread is not None:
        thread.join(timeout)
