"""Distributed requests: one change to a system-wide list, applied to every node it concerns
(docs/distributed-requests.md).

The order of the steps is what makes it crash-safe. A desync for every target is committed
before anything is sent; a node's desync is cleared only in the same transaction that commits
the master's new list, and only for nodes that confirmed exactly that version and hash; that
transaction also marks the ListChange committed. So wherever the process dies, the master holds
the old or the new list, ListChange.committed says which, and every node that might differ
from it still has a desync that the sync job will push the master's list through.

The list locks are app/services/list_locks.py, one push to one agent app/services/list_push.py; this
module re-exports their names.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import timedelta

from sqlalchemy import delete, select, update

from agent import liststate
from agent.validation import ValidationError
from app.display import counted
from app.extensions import conflict_insert, db, kept_on_commit
from app.failpoints import failpoint
from app.models import (
    Desync,
    ListChange,
    Node,
    NodeOutcome,
    Operation,
    OperationNode,
    OperationStatus,
    SystemList,
)
from app.models.base import as_utc, utcnow
from app.queues import redis_connection
from app.services import lists, operations
from app.services.errors import ConflictError
from app.services.list_locks import (
    ALIVE_PREFIX,
    LOCK_PREFIX,
    Lease,
    counted_desyncs,
    follow_implied_state,
    lease_seconds,
    list_busy,
    lock_key,
    operation_alive,
)
from app.services.list_push import classify, confirms, describe_error, push_list, push_timeout
from app.services.nodes import agent_client
from app.services.policies import get_policy

__all__ = [
    "ALIVE_PREFIX",
    "ENQUEUE_WAIT_S",
    "LOCK_PREFIX",
    "LOCK_WAIT_S",
    "Lease",
    "MAX_PUSH_THREADS",
    "PROGRESS_COMMIT_S",
    "classify",
    "confirms",
    "counted_desyncs",
    "describe_error",
    "distribute_change",
    "follow_implied_state",
    "lease_seconds",
    "list_busy",
    "lock_key",
    "operation_alive",
    "push_list",
    "push_timeout",
    "recover_interrupted",
    "request_change",
    "retry_change",
]


# Threads that send one list to the targets; a request to 100 nodes goes out in one wave.
MAX_PUSH_THREADS = 128
LOCK_WAIT_S = 300
# How often per-node outcomes are written while answers come in (the Operations page is live).
PROGRESS_COMMIT_S = 0.25
# How long a change waits for an earlier one whose job is not enqueued yet.
ENQUEUE_WAIT_S = 5


def _finish(operation: Operation, status: OperationStatus, message: str) -> None:
    operations.append_log(operation, message)
    operations.finish(operation, status, message)


def distribute_change(operation_id: int) -> OperationStatus:
    """Run one distributed request (the operation's params say which list and which change)."""
    operation = db.session.get(Operation, operation_id)
    if operation.status != OperationStatus.QUEUED.value:
        # A second copy of the job (re-queued by recovery while the first was only slow).
        return operation.op_status
    params = operation.params
    name = params["list"]
    defn = lists.LISTS[name]
    redis = redis_connection()
    with Lease(redis, lease_seconds(), alive_key=ALIVE_PREFIX + str(operation_id)) as lease:
        operations.mark_running(operation)
        operations.append_log(operation, f"waiting for the {defn.title.lower()} list's lock")
        failpoint("dr.before_lock")
        if not _take_turn(operation, name, lease):
            _finish(operation, OperationStatus.FAILED,
                    f"Another change to the {defn.title.lower()} list held its lock for {LOCK_WAIT_S} s; "
                    "nothing was changed. Try again.")
            return OperationStatus.FAILED
        failpoint("dr.after_lock")
        if db.session.get(ListChange, operation_id) is not None:
            # The other copy of a re-queued job recorded this change first; it (or recovery) finishes it.
            db.session.refresh(operation)
            return operation.op_status
        # The request is the only writer of what it loaded (the list's lock); reloading every
        # node and outcome row after each progress commit was most of the master's CPU.
        with kept_on_commit():
            return _distribute_locked(operation, defn, lease)


def _take_turn(operation: Operation, name: str, lease: Lease) -> bool:
    """Take the list's lock in the order the changes were made: a change made earlier that a
    worker is already running goes first, even if this worker reached the lock before it
    (firewall rules apply in order, so two quick additions must keep theirs). False after
    LOCK_WAIT_S without a turn."""
    deadline = time.monotonic() + LOCK_WAIT_S
    while lease.acquire(name, max(0.0, deadline - time.monotonic())):
        if not _earlier_change_running(operation, name):
            return True
        lease.release(name)
        time.sleep(0.05)
    return False


def _earlier_change_running(operation: Operation, name: str) -> bool:
    """True while an earlier change to the same list is in a live worker's hands and has yet to
    take the lock. One still waiting in the queue is not waited for: with a single worker it
    could only run after this one."""
    # Columns, not objects: the commit below would expire objects and reload each one on access.
    earlier = db.session.execute(select(
        Operation.id, Operation.params, Operation.status, Operation.rq_job_id, Operation.created_at,
    ).where(
        Operation.kind == "list_change",
        Operation.id < operation.id,
        Operation.status.in_((OperationStatus.QUEUED.value, OperationStatus.RUNNING.value)),
    )).all()
    db.session.commit()  # end the read, so the next look sees other workers' commits
    for other_id, params, status, rq_job_id, created_at in earlier:
        if params.get("list") != name:
            continue
        if status == OperationStatus.RUNNING.value:
            if operation_alive(other_id) and db.session.get(ListChange, other_id) is None:
                return True
        elif rq_job_id is None:
            # Its web request is between recording it and enqueueing its job (a moment).
            if as_utc(created_at) > utcnow() - timedelta(seconds=ENQUEUE_WAIT_S):
                return True
        elif operations.rq_job_state(rq_job_id) == "taken":
            return True
    return False


def _distribute_locked(operation: Operation, defn: lists.ListDef, lease: Lease) -> OperationStatus:
    """Steps 2-8 of docs/distributed-requests.md, "A change, step by step", with the list's lock held."""
    name, params = defn.name, operation.params
    master = lists.get_list(name)
    base_version, base_hash = master.version, master.hash
    targets = lists.targets(name)
    try:
        new_rows = lists.apply_change(name, master.rows, params["action"], params.get("row_id"), params.get("row"),
                                      master.version)
        lists.check_list(name, new_rows, {n.agent_port for n in targets}, "rows")
    except (lists.RowNotFound, ValidationError) as exc:
        db.session.rollback()
        _finish(operation, OperationStatus.FAILED, f"Nothing was changed: {exc}.")
        return OperationStatus.FAILED

    ready = [n for n in targets if lists.is_ready(n)]
    minimum = get_policy().min_ready_percent
    if targets and len(ready) * 100 < minimum * len(targets):
        percent = len(ready) * 100 // len(targets)
        db.session.rollback()
        _finish(operation, OperationStatus.REFUSED,
                f"Refused: {len(ready)} of {counted(len(targets), 'target node')} {'is' if len(ready) == 1 else 'are'} "
                f"ready ({percent}%); the policy "
                f"requires at least {minimum}%. Not ready: {_not_ready([n for n in targets if n not in ready])}. "
                "Nothing was changed anywhere; retry once they are back.")
        return OperationStatus.REFUSED

    new_version, new_hash = base_version + 1, liststate.list_hash(new_rows)
    target_ids = [n.id for n in targets]
    prior = set(db.session.scalars(
        select(Desync.node_id).where(Desync.list == name, Desync.node_id.in_(target_ids))
    )) if target_ids else set()
    change = ListChange(
        operation_id=operation.id, list_name=name, action=params["action"], row_id=params.get("row_id"),
        row=params.get("row"), base_version=base_version, base_hash=base_hash, new_version=new_version,
        new_hash=new_hash, new_rows=new_rows, prior_desyncs=sorted(prior), committed=False,
    )
    db.session.add(change)
    rows_by_node: dict[int, OperationNode] = {}
    for node in targets:
        row = OperationNode(node_id=node.id, node_name=node.name)
        operation.nodes.append(row)
        rows_by_node[node.id] = row
    # One statement for the whole cluster (register_desync would cost a query per node). A desync that
    # another process registered since the read above (a drift the collector found, a node back from
    # unavailable) is left as it is and counted as prior: it is not this request's to drop.
    missing = [{"node_id": nid, "list": name, "since": utcnow(), "attempts": 0} for nid in target_ids
               if nid not in prior]
    if missing:
        added = set(db.session.scalars(conflict_insert(Desync).values(missing).on_conflict_do_nothing()
                                       .returning(Desync.node_id)))
        prior |= {row["node_id"] for row in missing} - added
        change.prior_desyncs = sorted(prior)
    if prior:
        db.session.execute(update(Desync).where(Desync.list == name, Desync.node_id.in_(prior))
                           .values(next_try_at=None))
    db.session.commit()
    failpoint("dr.after_desyncs")

    if not targets:
        if _commit_master(change, []):
            _finish(operation, OperationStatus.SUCCEEDED,
                    f"{defn.title} v{new_version}: no node matches this list; applied to the master only.")
            return OperationStatus.SUCCEEDED
        _finish(operation, OperationStatus.FAILED, "The master's list changed under this request; nothing was changed.")
        return OperationStatus.FAILED

    kinds: dict[int, str | None] = {}
    for node in targets:
        if node not in ready:
            why = "in maintenance" if node.maintenance else f"{node.state}"
            rows_by_node[node.id].outcome = NodeOutcome.UNAVAILABLE.value
            rows_by_node[node.id].error = f"not sent: the node is {why}; it keeps a desync and will be synchronized"
            kinds[node.id] = "not_sent"
    operations.append_log(operation, f"sending {defn.title.lower()} v{new_version} ({counted(len(new_rows), 'row')}) "
                                     f"to {len(ready)} of {counted(len(targets), 'node')}")
    body = {"version": new_version, "hash": new_hash, "rows": new_rows}
    encoded = json.dumps(body, separators=(",", ":")).encode("utf-8")
    timeout = push_timeout()
    clients = {node.id: agent_client(node, timeout) for node in ready}
    last_commit, confirmed_once = time.monotonic(), False
    with ThreadPoolExecutor(max_workers=min(MAX_PUSH_THREADS, max(1, len(ready)))) as pool:
        futures = {pool.submit(push_list, clients[node_id], name, body, encoded): node_id for node_id in clients}
        for index, future in enumerate(as_completed(futures)):
            if index == 0:
                failpoint("dr.after_some_sent")
            node_id = futures[future]
            outcome, error, kind = future.result()
            rows_by_node[node_id].outcome = outcome.value
            rows_by_node[node_id].error = error
            kinds[node_id] = kind
            if outcome == NodeOutcome.APPLIED and not confirmed_once:
                confirmed_once = True
                db.session.commit()
                last_commit = time.monotonic()
                failpoint("dr.after_confirm")
            elif time.monotonic() - last_commit > PROGRESS_COMMIT_S:
                db.session.commit()
                last_commit = time.monotonic()
    db.session.commit()
    failpoint("dr.before_commit")

    applied = [nid for nid, row in rows_by_node.items() if row.outcome == NodeOutcome.APPLIED.value]
    if applied and not lease.lost and _commit_master(change, applied):
        failpoint("dr.after_commit")
        status, message = _result_message(defn, new_version, targets, rows_by_node)
        _finish(operation, status, message)
        return status

    # Nothing confirmed (or the lock was lost): the master keeps its list. A desync this request
    # added is dropped only where the node certainly did not take the new list: it was not sent
    # one, or its agent answered with a refusal (and restored its files). Not after a lost lease:
    # another request may hold the list now, and some of those desyncs may be its own.
    untouched = [nid for nid, kind in kinds.items() if kind in ("not_sent", "refused") and nid not in prior]
    if untouched and not lease.lost:
        db.session.execute(delete(Desync).where(Desync.list == name, Desync.node_id.in_(untouched)))
    if applied:
        reason = "the list's lock was lost" if lease.lost else "the master's list changed under this request"
        for nid in applied:
            rows_by_node[nid].outcome = NodeOutcome.FAILED.value
            rows_by_node[nid].error = (f"applied v{new_version}, but {reason}; the node is synchronized back "
                                       "to the master's list")
    db.session.commit()
    errors = "; ".join(f"{row.node_name}: {row.outcome}: {row.error}" for row in rows_by_node.values())
    _finish(operation, OperationStatus.FAILED,
            f"{defn.title}: no node applied v{new_version}; the master's list is unchanged (v{change.base_version}). "
            f"{errors}")
    return OperationStatus.FAILED


def _not_ready(nodes: list[Node], shown: int = 5) -> str:
    """The nodes a request could not be sent to, each with why ("n2 (unavailable), n3 (in maintenance)")."""
    words = [f"{n.name} ({'in maintenance' if n.maintenance else n.state})" for n in nodes[:shown]]
    if len(nodes) > shown:
        words.append(f"{len(nodes) - shown} more")
    return ", ".join(words)


def _commit_master(change: ListChange, applied: list[int]) -> bool:
    """One transaction: the master's new list (only if still at the base version), the change
    marked committed, and the desyncs of the nodes that confirmed it cleared. False if fenced."""
    lists.get_list(change.list_name)
    result = db.session.execute(
        update(SystemList)
        .where(SystemList.name == change.list_name, SystemList.version == change.base_version,
               SystemList.hash == change.base_hash)
        .values(version=change.new_version, hash=change.new_hash, rows=change.new_rows, updated_at=utcnow(),
                operation_id=change.operation_id)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        db.session.rollback()
        return False
    change.committed = True
    if applied:
        db.session.execute(delete(Desync).where(Desync.list == change.list_name, Desync.node_id.in_(applied))
                           .execution_options(synchronize_session=False))
        follow_implied_state(applied)
    db.session.commit()
    return True


def _result_message(defn: lists.ListDef, version: int, targets: list[Node],
                    rows: dict[int, OperationNode]) -> tuple[OperationStatus, str]:
    """Succeeded or partial, naming who applied it and who will be synchronized later."""
    by_outcome: dict[str, list[str]] = {}
    for node in targets:
        by_outcome.setdefault(rows[node.id].outcome, []).append(node.name)
    applied = by_outcome.pop(NodeOutcome.APPLIED.value, [])
    message = (f"{defn.title} v{version}: applied on {len(applied)} of {counted(len(targets), 'node')} "
               f"({', '.join(applied)})")
    if not by_outcome:
        return OperationStatus.SUCCEEDED, message + "."
    later = "; ".join(f"{outcome} on {', '.join(names)}" for outcome, names in sorted(by_outcome.items()))
    return OperationStatus.PARTIAL, f"{message}; {later}: these keep a desync and will be synchronized later."


def recover_interrupted(operation: Operation) -> None:
    """Give an operation whose worker died the honest final status: what the master committed."""
    change = db.session.get(ListChange, operation.id)
    name = operation.params.get("list")
    title = lists.LISTS[name].title if name in lists.LISTS else "List"
    if change is not None and change.committed:
        for row in operation.nodes:
            if row.outcome == NodeOutcome.PENDING.value:
                row.outcome = NodeOutcome.FAILED.value
                row.error = ("the worker stopped before this node's answer was recorded; it keeps a desync "
                             "and is synchronized")
        applied = [r.node_name for r in operation.nodes if r.outcome == NodeOutcome.APPLIED.value]
        others = [r.node_name for r in operation.nodes if r.outcome != NodeOutcome.APPLIED.value]
        status = OperationStatus.PARTIAL if others else OperationStatus.SUCCEEDED
        message = (f"{title} v{change.new_version}: the master committed it, then the worker stopped. "
                   f"Applied on {len(applied)} of {counted(len(operation.nodes), 'node')} "
                   f"({', '.join(applied) or 'none'})")
        if others:
            message += f"; {', '.join(others)} keep a desync and will be synchronized later."
    else:
        version = change.base_version if change else lists.get_list(name).version
        for row in operation.nodes:
            if row.outcome == NodeOutcome.APPLIED.value:
                row.outcome = NodeOutcome.FAILED.value
                row.error = (f"applied v{change.new_version}, but the worker stopped before the master committed it; "
                             f"the node is synchronized back to v{version}")
            elif row.outcome == NodeOutcome.PENDING.value:
                row.outcome = NodeOutcome.FAILED.value
                row.error = "no confirmation recorded: the worker stopped; the node keeps a desync and is synchronized"
        status = OperationStatus.FAILED
        message = (f"{title}: the worker stopped before the master committed the change; the master's list is "
                   f"unchanged (v{version}) and every node is synchronized to it.")
    operations.append_log(operation, "recovered after the worker stopped: " + message)
    operations.finish(operation, status, message)


def retry_change(operation: Operation, user_id: int | None) -> Operation:
    """A change that failed or was refused (nothing was changed), asked again as it was asked: the same
    row, against the list as it is now; ValidationError or RowNotFound when it no longer fits."""
    if operation.kind != "list_change" or operation.status not in (OperationStatus.FAILED.value,
                                                                    OperationStatus.REFUSED.value):
        raise ConflictError(f"Operation #{operation.id} is {operation.status}: only a change to a system-wide "
                            "list that failed or was refused can be retried.")
    params = operation.params
    new = request_change(params["list"], params["action"], params.get("row"), row_id=params.get("row_id"),
                         user_id=user_id)
    operations.append_log(operation, f"retried as operation #{new.id}")
    return new


def request_change(name: str, action: str, data: object = None, *, row_id: int | None = None,
                   user_id: int | None) -> Operation:
    """Validate a change (ValidationError names the field, RowNotFound for an unknown id) and
    start its distributed request; nothing is stored or sent when the input is bad."""
    defn = lists.LISTS[name]
    row = lists.clean_row(name, data) if action in ("add", "edit") else None
    master = lists.get_list(name)
    new_rows = lists.apply_change(name, master.rows, action, row_id, row, master.version)
    ports = {n.agent_port for n in lists.targets(name)}
    lists.check_list(name, new_rows, ports, "id" if action == "delete" else "action")
    db.session.rollback()
    what = {"add": f"add {defn.noun}", "edit": f"edit {defn.noun} #{row_id}", "delete": f"delete {defn.noun} #{row_id}"}
    return operations.start_operation(
        "list_change", f"{defn.title}: {what[action]}", "distribute_list_change", user_id=user_id,
        params={"list": name, "action": action, "row_id": row_id, "row": row},
    )
