"""What runs each synchronizer (docs/distributed-requests.md): one table, read by the sync job."""

from __future__ import annotations

from app.models import Node, NodeOutcome
from app.services import list_push, lists, roles
from app.services.dbserver import sync_db_server
from app.services.nodes import agent_client
from app.services.os_accounts import sync_os_accounts
from app.services.synchronizers import SyncError, SyncRunner


def list_runner(name: str) -> SyncRunner:
    """The runner that pushes the master's current list `name` to one node."""

    def push(node: Node) -> bool:
        master = lists.get_list(name)
        body = {"version": master.version, "hash": master.hash, "rows": master.rows}
        outcome, error, _ = list_push.push_list(agent_client(node, list_push.push_timeout()), name, body)
        if outcome != NodeOutcome.APPLIED:
            raise SyncError(error)
        return True

    push.__name__ = f"push_{name}"
    push.__doc__ = f"Push the master's {name} list to the node; True once it confirmed version and hash."
    return push


RUNNERS: dict[str, SyncRunner] = {
    "roles": roles.sync_roles,
    "software": roles.sync_software,
    "templates": roles.sync_templates,
    "users": sync_os_accounts,
    "dbserver": sync_db_server,
    **{name: list_runner(name) for name in lists.LISTS},
}


def get_runner(name: str) -> SyncRunner | None:
    """The runner of a synchronizer, if it has one."""
    return RUNNERS.get(name)
