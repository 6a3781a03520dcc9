"""Operations: the user-visible record of every background job and its per-node outcome."""

from __future__ import annotations

from datetime import timedelta

from rq.exceptions import NoSuchJobError
from rq.job import JobStatus
from sqlalchemy import and_, func, or_, select

from app.extensions import db
from app.models import NodeOutcome, Operation, OperationNode, OperationStatus
from app.models.base import as_utc, iso_utc, utcnow
from app.queues import DEFAULT_QUEUE, enqueue, fetch_job, get_queue

FINAL_NODE_OUTCOMES = {NodeOutcome.APPLIED.value, NodeOutcome.FAILED.value, NodeOutcome.UNAVAILABLE.value}
DEAD_RQ_STATUSES = {JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED}
# A job's first step (marking its operation running) follows its start within milliseconds; a job
# taken by a worker longer ago than this with the operation still queued lost that worker first.
ABANDONED_GRACE_S = 10
# A list of operations names every target of an operation with this many or fewer; beyond it,
# counts per outcome and the targets that did not apply (the operation's own page has them all).
LIST_NODES_NAMED = 8



def visible_to(query, user):
    """The operations of `query` that `user` may see: every one for administrators, otherwise those they
    started (the Operations page and the API both ask this)."""
    if user.is_admin:
        return query
    return query.where(Operation.created_by_id == user.id)


def start_operation(
    kind: str,
    title: str,
    job: str,
    *,
    user_id: int | None,
    targets: list | None = None,
    params: dict | None = None,
    queue: str = DEFAULT_QUEUE,
    job_timeout: int = 600,
) -> Operation:
    """Record an operation, then enqueue its job (a name of queues.JOBS) with the operation's id as first argument."""
    operation = Operation(
        kind=kind, title=title, created_by_id=user_id, params=params or {}
    )
    for node in targets or []:
        operation.nodes.append(OperationNode(node_id=node.id, node_name=node.name))
    db.session.add(operation)
    db.session.commit()
    rq_job = enqueue(job, operation.id, queue=queue, job_timeout=job_timeout)
    operation.rq_job_id = rq_job.id
    db.session.commit()
    return operation


def mark_running(operation: Operation) -> None:
    """The job has started."""
    operation.status = OperationStatus.RUNNING.value
    operation.started_at = utcnow()
    db.session.commit()


def append_log(operation: Operation, line: str) -> None:
    """Add a line to the operation's visible log and make it visible at once."""
    stamp = utcnow().strftime("%H:%M:%S")
    operation.log = (operation.log or "") + f"[{stamp}] {line}\n"
    db.session.commit()


def set_node_outcome(operation: Operation, node_id: int, outcome: NodeOutcome, error: str | None = None) -> None:
    """Record what happened on one target."""
    for row in operation.nodes:
        if row.node_id == node_id:
            row.outcome = outcome.value
            row.error = error
    db.session.commit()


def finish(operation: Operation, status: OperationStatus, message: str) -> None:
    """The job has ended with this status and message."""
    operation.status = status.value
    operation.message = message
    operation.finished_at = utcnow()
    db.session.commit()


def outcome_status(operation: Operation) -> tuple[OperationStatus, str]:
    """Succeeded, partial or failed, with a message that counts and names the nodes."""
    by_outcome: dict[str, list[str]] = {}
    for row in operation.nodes:
        by_outcome.setdefault(row.outcome, []).append(row.node_name)
    applied = by_outcome.get(NodeOutcome.APPLIED.value, [])
    others = {k: v for k, v in by_outcome.items() if k != NodeOutcome.APPLIED.value}
    parts = [f"{len(applied)} of {len(operation.nodes)} applied"]
    parts += [f"{k}: {', '.join(v)}" for k, v in sorted(others.items())]
    message = "; ".join(parts)
    if not others:
        return OperationStatus.SUCCEEDED, message
    if applied:
        return OperationStatus.PARTIAL, message
    return OperationStatus.FAILED, message


def operation_to_dict(operation: Operation, nodes: list[OperationNode] | None = None) -> dict:
    """The operation as the API shows it; nodes: these outcome rows instead of all of them."""
    return {
        "id": operation.id,
        "kind": operation.kind,
        "title": operation.title,
        "status": operation.status,
        "message": operation.message,
        "created_by": operation.created_by.name if operation.created_by else None,
        "created_at": iso_utc(operation.created_at),
        "started_at": iso_utc(operation.started_at),
        "finished_at": iso_utc(operation.finished_at),
        "nodes": [
            {"node_id": r.node_id, "node": r.node_name, "outcome": r.outcome, "error": r.error}
            for r in (operation.nodes if nodes is None else nodes)
        ],
    }


def outcome_summaries(operation_ids: list[int]) -> dict[int, dict]:
    """Per operation: {"counts": {outcome: n}, "total", "nodes": the OperationNode rows worth naming in a
    list, "complete": whether those are all of them}. Two queries for any number of operations."""
    counts: dict[int, dict[str, int]] = {i: {} for i in operation_ids}
    grouped = select(OperationNode.operation_id, OperationNode.outcome, func.count()).where(
        OperationNode.operation_id.in_(operation_ids)).group_by(OperationNode.operation_id, OperationNode.outcome)
    for operation_id, outcome, number in db.session.execute(grouped):
        counts[operation_id][outcome] = number
    small = [i for i in operation_ids if sum(counts[i].values()) <= LIST_NODES_NAMED]
    named: dict[int, list[OperationNode]] = {i: [] for i in operation_ids}
    rows = db.session.scalars(select(OperationNode).where(or_(
        OperationNode.operation_id.in_(small),
        and_(OperationNode.operation_id.in_(operation_ids), OperationNode.outcome != NodeOutcome.APPLIED.value),
    )).order_by(OperationNode.id))
    for row in rows:
        named[row.operation_id].append(row)
    return {i: {"counts": counts[i], "total": sum(counts[i].values()), "nodes": named[i],
                "complete": len(named[i]) == sum(counts[i].values())} for i in operation_ids}


def operation_summary_to_dict(operation: Operation, summary: dict) -> dict:
    """The operation as the API's list shows it: outcome counts, and every target only when there are few."""
    return {
        **operation_to_dict(operation, nodes=summary["nodes"]),
        "outcomes": summary["counts"],
        "nodes_complete": summary["complete"],
    }


def rq_job_state(job_id: str) -> str:
    """Where a queued operation's RQ job is: "lost" (Redis no longer has it: restarted without
    the last writes of its append-only file), "dead" (failed, stopped, canceled: it will never
    run), "abandoned" (taken by a worker that vanished before the job's first step), "taken" (a
    live worker has it) or "waiting" (still in its queue, or deferred)."""
    try:
        job = fetch_job(job_id)
    except NoSuchJobError:
        return "lost"
    status = job.get_status(refresh=False)
    if status in DEAD_RQ_STATUSES:
        return "dead"
    if status == JobStatus.STARTED:
        since = job.started_at
    elif status == JobStatus.QUEUED and job.id in get_queue(job.origin).intermediate_queue.get_job_ids():
        # Taken off the queue by a worker that has yet to register it as started (if that worker
        # died, RQ would only notice at its maintenance, every 10 minutes, and then fail it).
        since = job.enqueued_at
    else:
        return "waiting"
    if since and as_utc(since) < utcnow() - timedelta(seconds=ABANDONED_GRACE_S):
        return "abandoned"
    return "taken"
