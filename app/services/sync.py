"""The sync job (docs/distributed-requests.md, "Synchronization"): walks the desync registry and brings
nodes in line with the master; also drift detection for the collector and the recovery of requests
whose worker died."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from flask import current_app
from sqlalchemy import select

from agent.client import AgentError
from app.display import counted
from app.extensions import db
from app.failpoints import failpoint
from app.models import Desync, Node, NodeOutcome, NodeState, Operation, OperationStatus
from app.models.base import as_utc, utcnow
from app.queues import enqueue, redis_connection
from app.services import certificates, distributed, list_locks, list_push, lists, operations
from app.services.desyncs import applies_to, register_desync
from app.services.sync_runners import get_runner
from app.services.synchronizers import SYNCHRONIZERS, SyncError

SYNC_INTERVAL_S = 2
BACKOFF_BASE_S = 5
BACKOFF_MAX_S = 300
MAX_SYNC_THREADS = 64
ENQUEUE_GRACE_S = 60
# A request whose job keeps being lost or abandoned is failed after this many new jobs: a change whose
# worker dies each time before its first step would otherwise be queued again at every recovery.
MAX_REQUEUES = 3
# Nodes whose agent answers and that are set up far enough to take data.
SYNCABLE_STATES = {NodeState.INSTALLING.value, NodeState.SYNCING.value, NodeState.READY.value}



def backoff(attempts: int) -> timedelta:
    """Delay before the next try after `attempts` failures in a row: 5 s doubling up to 5 min."""
    return timedelta(seconds=min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** max(0, attempts - 1)))


def plan_for(desyncs: list[Desync]) -> list[str]:
    """Synchronizers to run on one node this round, in priority order.

    While one that implies `installing` (roles, software) is pending, only those run: the data
    lists need the node's software. Otherwise every due one runs, each on its own: a list that
    keeps failing backs off without holding back the node's other lists.
    """
    names = sorted((d.list for d in desyncs if d.list in SYNCHRONIZERS), key=lambda n: SYNCHRONIZERS[n].priority)
    installing = [n for n in names if SYNCHRONIZERS[n].implies == NodeState.INSTALLING]
    return [n for n in (installing[:1] if installing else names) if get_runner(n)]


def run_sync(node_ids: list[int] | None = None, force: bool = False) -> dict[int, dict[str, str]]:
    """One round over the registry; returns node id → {synchronizer: "ok" | "working" | error | "busy"}."""
    recover_interrupted_operations()
    now = utcnow()
    query = (select(Desync).join(Node)
             .where(Node.state.in_(SYNCABLE_STATES), Node.maintenance.is_(False), Node.missed_polls == 0)
             .order_by(Desync.node_id))
    if node_ids is not None:
        query = query.where(Desync.node_id.in_(node_ids))
    per_node: dict[int, list[Desync]] = {}
    for desync in db.session.scalars(query):
        due = force or desync.next_try_at is None or as_utc(desync.next_try_at) <= now
        if due:
            per_node.setdefault(desync.node_id, []).append(desync)
    plans = {node_id: plan_for(rows) for node_id, rows in per_node.items()}
    plans = {k: v for k, v in plans.items() if v}
    if not plans:
        db.session.rollback()
        return {}
    wanted = sorted({n for plan in plans.values() for n in plan if n in lists.LISTS})
    app = current_app._get_current_object()
    with list_locks.Lease(redis_connection(), list_locks.lease_seconds()) as lease:
        # A list with a distributed request in flight is skipped this round (not an attempt):
        # pushing the old version under it could undo what the request is confirming.
        busy = {n for n in wanted if not lease.acquire(n, None)}
        db.session.rollback()

        def run_node(node_id: int) -> dict[str, object]:
            with app.app_context():
                try:
                    node = db.session.get(Node, node_id)
                    results: dict[str, object] = {}
                    for name in plans[node_id]:
                        if name in busy:
                            results[name] = "busy"
                            continue
                        try:
                            results[name] = bool(get_runner(name)(node))
                        except SyncError as exc:
                            results[name] = exc
                        except AgentError as exc:
                            results[name] = SyncError(list_push.describe_error(exc))
                        except Exception as exc:  # noqa: BLE001  (one node's odd answer must not stop the round)
                            db.session.rollback()
                            current_app.logger.exception("synchronizer %s failed on node %s", name, node.name)
                            results[name] = SyncError(f"the {name} synchronizer failed on this node's answer: "
                                                      f"{exc!r}")
                    return results
                finally:
                    db.session.remove()

        with ThreadPoolExecutor(max_workers=min(MAX_SYNC_THREADS, len(plans))) as pool:
            outcomes = dict(zip(plans, pool.map(run_node, plans), strict=False))
        return _record(outcomes, lease)


def _record(outcomes: dict[int, dict[str, object]], lease: list_locks.Lease) -> dict[int, dict[str, str]]:
    """Clear confirmed desyncs, back off failed ones, move nodes to their implied state."""
    now = utcnow()
    summary: dict[int, dict[str, str]] = {}
    for node_id, results in outcomes.items():
        summary[node_id] = {}
        for name, result in results.items():
            desync = db.session.scalar(select(Desync).where(Desync.node_id == node_id, Desync.list == name))
            if result is True:
                summary[node_id][name] = "ok"
                if desync is None:
                    continue
                failpoint("sync.after_push")
                if name in lists.LISTS and lease.lost:
                    summary[node_id][name] = "lock lost; kept for the next round"
                    continue
                db.session.delete(desync)
            elif result is False or result == "busy":
                summary[node_id][name] = "working" if result is False else "busy"
            else:
                summary[node_id][name] = str(result)
                if desync is not None:
                    desync.attempts += 1
                    desync.last_error = str(result)[:4000]
                    desync.next_try_at = now + backoff(desync.attempts)
    db.session.flush()
    # The lists this round pushed (it holds their locks): a desync left there is a real failure. A list it
    # found busy belongs to a request in flight, which leaves its own desyncs until it ends.
    pushed = frozenset(name for results in outcomes.values() for name, result in results.items() if result != "busy")
    list_locks.follow_implied_state(list(outcomes), held=pushed)
    db.session.commit()
    return summary


def resync(node: Node, names: list[str] | None = None) -> list[str]:
    """Register desyncs on a node (the named lists, or every synchronizer that can run) due now."""
    if names is None:
        names = [n for n in SYNCHRONIZERS if get_runner(n) and applies_to(node, n)]
    for name in names:
        register_desync(node, name).next_try_at = None
    return names


def retry_now(desync: Desync) -> None:
    """Make a backed-off desync due at once."""
    desync.next_try_at = None


def sync_node_operation(operation_id: int) -> OperationStatus:
    """Run a sync round for the operation's one node, ignoring back-off, and record the outcome."""
    operation = db.session.get(Operation, operation_id)
    operations.mark_running(operation)
    row = operation.nodes[0]
    node = db.session.get(Node, row.node_id)
    if node is None or node.state not in SYNCABLE_STATES or node.maintenance or node.missed_polls:
        why = "removed" if node is None else ("in maintenance" if node.maintenance else
                                               f"{node.state}, its agent did not answer the last poll")
        operations.set_node_outcome(operation, row.node_id, NodeOutcome.UNAVAILABLE,
                                    f"not synchronized: the node is {why}")
        operations.finish(operation, OperationStatus.FAILED,
                          f"{row.node_name} was not synchronized: the node is {why}; the periodic sync job "
                          "takes it when it answers")
        return OperationStatus.FAILED
    results: dict[str, str] = {}
    # Rounds until nothing more confirms: roles and software must finish before the data lists run.
    for _ in range(len(SYNCHRONIZERS)):
        round_results = run_sync([node.id], force=True).get(node.id, {})
        for name, result in round_results.items():
            operations.append_log(operation, f"{name}: {result}")
        results.update(round_results)
        if "ok" not in round_results.values():
            break
    left = [d.list for d in db.session.scalars(select(Desync).where(Desync.node_id == node.id))]
    if left:
        operations.set_node_outcome(operation, node.id, NodeOutcome.FAILED, "still pending: " + ", ".join(left))
        operations.finish(operation, OperationStatus.FAILED,
                          f"{node.name}: still pending: {', '.join(left)}; the sync job keeps trying")
        return OperationStatus.FAILED
    operations.set_node_outcome(operation, node.id, NodeOutcome.APPLIED)
    operations.finish(operation, OperationStatus.SUCCEEDED,
                      f"{node.name} holds the master's data ({', '.join(results) or 'nothing was pending'}).")
    return OperationStatus.SUCCEEDED


# The operations whose worker's death recovery looks for: their job, and what gives them their final status.
RECOVERABLE = {
    "list_change": ("distribute_list_change", distributed.recover_interrupted),
    certificates.ISSUE_KIND: (certificates.ISSUE_JOB, certificates.recover_interrupted),
}


def recover_interrupted_operations() -> list[int]:
    """Finish distributed requests and certificate requests whose worker died (SIGKILL, power cut) with an
    honest status; then release certificate records left issuing with no operation running."""
    stuck = db.session.scalars(select(Operation).where(
        Operation.kind.in_(RECOVERABLE),
        Operation.status.in_((OperationStatus.QUEUED.value, OperationStatus.RUNNING.value)),
    )).all()
    recovered = []
    for operation in stuck:
        if operation.status == OperationStatus.RUNNING.value:
            dead = not list_locks.operation_alive(operation.id)
        elif operation.rq_job_id is None:
            # The web process died between recording the operation and enqueueing its job.
            dead = as_utc(operation.created_at) < utcnow() - timedelta(seconds=ENQUEUE_GRACE_S)
        else:
            state = operations.rq_job_state(operation.rq_job_id)
            if state in ("abandoned", "lost"):
                if operation.requeues < MAX_REQUEUES:
                    _requeue(operation, state)
                    continue
                operations.append_log(operation, f"{_REQUEUED_BECAUSE[state]}, after "
                                                 f"{counted(operation.requeues, 'time')} queued again: not queued "
                                                 "again (see the job workers' logs for what stops them)")
            dead = state in ("dead", "abandoned", "lost")
        if dead and _still_unfinished(operation):
            RECOVERABLE[operation.kind][1](operation)
            recovered.append(operation.id)
    certificates.release_stuck()
    return recovered


def _still_unfinished(operation: Operation) -> bool:
    """Read the status again after finding no live worker: a worker commits its operation's final status
    before it lets the alive key go, so one that finished after the list above was read is seen as
    finished here, not taken for dead (its refusal was rewritten as a failure and every node resynced)."""
    db.session.refresh(operation, ["status"])
    return operation.status in (OperationStatus.QUEUED.value, OperationStatus.RUNNING.value)


_REQUEUED_BECAUSE = {
    "abandoned": "the worker that took this request stopped before its first step",
    "lost": "Redis no longer has this request's job (restarted without its last writes)",
}


def _requeue(operation: Operation, state: str) -> None:
    """Queue a request again that never reached its first step: its worker died first (RQ itself
    would only mark the job failed, minutes later) or Redis lost the job. Nothing of it ran, and
    the user was told it was accepted; the operation row holds the whole change."""
    job = enqueue(RECOVERABLE[operation.kind][0], operation.id, job_timeout=600)
    operation.rq_job_id = job.id
    operation.requeues += 1
    operations.append_log(operation, f"{_REQUEUED_BECAUSE[state]}; queued again")


def start_node_sync(node: Node, names: list[str] | None, user_id: int) -> Operation:
    """Register the desyncs and start the operation that re-synchronizes the node."""
    registered = resync(node, names)
    db.session.commit()
    return operations.start_operation(
        "sync_node", f"Synchronize {node.name}: {', '.join(registered) or 'nothing'}", "sync_node",
        user_id=user_id, targets=[node], params={"lists": registered},
    )


def detect_drift(node: Node, reported: object, asked_at: dict[str, tuple[int, str]] | None = None) -> list[str]:
    """Register a desync for every list whose version or hash on the node differs from the master's.

    Skipped for lists the node already has a desync for, lists with a request in flight, and lists
    whose head moved since the node was asked (`asked_at`: the heads read before the poll went out):
    in both of the last, the answer may predate a request's commit. Returns the lists found drifted.
    """
    # Called for a node that just answered; one back from `unavailable` is compared at once.
    answering = (NodeState.SYNCING.value, NodeState.READY.value, NodeState.UNAVAILABLE.value)
    if node.state not in answering or not isinstance(reported, dict):
        return []
    master_heads = lists.heads()
    pending = {d.list for d in node.desyncs}
    drifted = []
    for name, (version, content_hash) in master_heads.items():
        if name in pending or not applies_to(node, name):
            continue
        held = reported.get(name) or {"version": 0, "hash": lists.empty_hash()}
        if not isinstance(held, dict) or (held.get("version"), held.get("hash")) == (version, content_hash):
            continue
        if asked_at is not None and asked_at.get(name) != (version, content_hash):
            continue  # a change committed while the node was being asked: look again at the next poll
        if list_locks.list_busy(name):
            continue
        register_desync(node, name, f"drift: the node reports v{held.get('version')} "
                                    f"{str(held.get('hash'))[:12]}…, the master holds v{version} {content_hash[:12]}…")
        drifted.append(name)
    if drifted:
        db.session.flush()
        db.session.expire(node, ["desyncs"])
        current_app.logger.info("drift on %s: %s", node.name, ", ".join(drifted))
    return drifted

