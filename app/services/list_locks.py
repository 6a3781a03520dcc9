"""The locks on system-wide lists and what they mean for node states (docs/distributed-requests.md).

A distributed request or a sync round holds a list's lock in Redis through a Lease, renewed by a
thread while its process lives (a SIGKILLed holder's locks lapse); a running operation's "alive"
key is renewed the same way. A node's pending desyncs decide its state, except those of a list whose
lock is held: its request registered them before sending and clears them when it commits.
"""

from __future__ import annotations

import os
import threading

from flask import current_app
from redis import Redis
from redis.exceptions import LockError, RedisError
from sqlalchemy import select

from app.extensions import db
from app.models import Desync, Node, NodeState
from app.queues import redis_connection
from app.services import lists
from app.services.nodes import change_state
from app.services.synchronizers import implied_state

LOCK_PREFIX = "hostfleet:lock:list:"
ALIVE_PREFIX = "hostfleet:alive:op:"


def lease_seconds() -> float:
    """How long a list lock outlives a dead holder (the holder renews it every third of that)."""
    return float(os.environ.get("HOSTFLEET_LIST_LEASE_S") or current_app.config.get("LIST_LEASE_S", 15))


def lock_key(name: str) -> str:
    """The Redis key of a list's lock."""
    return LOCK_PREFIX + name


def list_busy(name: str) -> bool:
    """True while a distributed request or a sync round holds the list's lock."""
    return bool(redis_connection().exists(lock_key(name)))


def operation_alive(operation_id: int) -> bool:
    """True while the process running this operation is alive (its lease key is renewed)."""
    return bool(redis_connection().exists(ALIVE_PREFIX + str(operation_id)))


class Lease:
    """List locks and an optional "operation alive" key, renewed by a thread while this process lives.

    A SIGKILLed holder stops renewing, so its locks and alive key vanish after `ttl` seconds.
    `lost` turns true if a renewal found a lock no longer ours; the holder must then not commit.
    """

    def __init__(self, redis: Redis, ttl: float, alive_key: str | None = None):
        self.redis = redis
        self.ttl = ttl
        self.alive_key = alive_key
        self.locks: dict[str, object] = {}
        self.lost = False
        # Held while a lock is given back and while the renewal runs: a renewal must never pick a
        # lock the holder is giving back (it would find it gone and call the lease lost).
        self._mutex = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Lease:
        if self.alive_key:
            self.redis.set(self.alive_key, "1", px=int(self.ttl * 1000))
        self._thread = threading.Thread(target=self._renew, name="lease-renewal", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        for lock in self.locks.values():
            try:
                lock.release()
            except LockError:
                pass
        if self.alive_key:
            self.redis.delete(self.alive_key)

    def acquire(self, name: str, wait: float | None) -> bool:
        """Take a list's lock, waiting up to `wait` seconds (None: do not wait)."""
        lock = self.redis.lock(lock_key(name), timeout=self.ttl, sleep=0.05, thread_local=False)
        got = lock.acquire(blocking=wait is not None, blocking_timeout=wait)
        if got:
            with self._mutex:
                self.locks[name] = lock
        return got

    def release(self, name: str) -> None:
        """Give a list's lock back before the lease ends."""
        with self._mutex:
            try:
                self.locks.pop(name).release()
            except LockError:
                pass

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            with self._mutex:
                try:
                    if self.alive_key:
                        self.redis.set(self.alive_key, "1", px=int(self.ttl * 1000))
                    for lock in self.locks.values():
                        lock.reacquire()
                except (LockError, RedisError):
                    # Redis restarted or the lease lapsed: someone else may hold the list now.
                    self.lost = True


def counted_desyncs(state: str, names: list[str], busy: dict[str, bool] | None = None,
                    held: frozenset[str] = frozenset()) -> list[str]:
    """The pending synchronizers that decide a node's next state (busy: a cache of list_busy answers;
    held: lists whose lock the caller holds itself and whose results it has, which always count).

    A ready node is not demoted for a list whose distributed request or sync round is in flight (its
    lock is held): every request registers a desync on every target before sending, so counting them
    made every node `syncing` (refusing user-data changes) whenever a firewall or cron change was on
    its way. A node the request leaves behind keeps its desync, which counts once the lock is released.
    """
    if state != NodeState.READY.value:
        return names
    busy = {} if busy is None else busy
    for name in names:
        if name not in busy:
            busy[name] = name in lists.LISTS and name not in held and list_busy(name)
    return [name for name in names if not busy[name]]


def follow_implied_state(node_ids: list[int], held: frozenset[str] = frozenset()) -> None:
    """Nodes that are syncing or ready move to the state their remaining desyncs imply
    (held: lists whose lock the caller holds and whose results it has: see counted_desyncs)."""
    pending: dict[int, list[str]] = {nid: [] for nid in node_ids}
    for node_id, name in db.session.execute(select(Desync.node_id, Desync.list).where(Desync.node_id.in_(node_ids))):
        pending[node_id].append(name)
    # Columns only: loading whole nodes (with their stats documents) cost more than the rest.
    states = db.session.execute(select(Node.id, Node.state).where(Node.id.in_(node_ids))).all()
    busy: dict[str, bool] = {}
    for node_id, state in states:
        if state not in (NodeState.SYNCING.value, NodeState.READY.value):
            continue
        pending[node_id] = counted_desyncs(state, pending[node_id], busy, held)
        target = implied_state(pending[node_id])
        node = db.session.get(Node, node_id) if target.value != state else None
        if node is not None:
            why = "every synchronizer confirmed" if target == NodeState.READY else "waiting for " + ", ".join(
                sorted(pending[node.id]))
            change_state(node, target, why)
