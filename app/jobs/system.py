"""Jobs for the system-wide lists: distributed requests and synchronization."""

from __future__ import annotations

from app.jobs import job
from app.services import distributed, sync


@job
def distribute_list_change(operation_id: int) -> str:
    """Run one distributed request (docs/distributed-requests.md) for the operation."""
    return distributed.distribute_change(operation_id).value


@job
def sync_node(operation_id: int) -> str:
    """Re-synchronize the operation's node now, ignoring back-off."""
    return sync.sync_node_operation(operation_id).value


@job
def sync_round() -> dict:
    """One round of the sync job now (retry-now buttons enqueue it)."""
    return {str(k): v for k, v in sync.run_sync().items()}
