"""The `dbserver` synchronizer: a db node's MariaDB listens on the node's cluster address and lets in the
cluster's web nodes only (PUT /v1/dbserver; docs/agent-ops.md, "Databases")."""

from __future__ import annotations

from sqlalchemy import select

from agent import validation as v
from agent.client import AgentError
from agent.ops import db as db_ops
from app.extensions import db
from app.models import Node
from app.services import nodes as node_service
from app.services.desyncs import register_desync
from app.services.synchronizers import SyncError


def web_node_addresses() -> list[str]:
    """The IP addresses of the cluster's web nodes: a database user may connect from each of them."""
    addresses = set()
    for node in db.session.scalars(select(Node).order_by(Node.id)):
        if "web" in (node.roles or []):
            try:
                addresses.add(db_ops.host_address(node.address, "address"))
            except v.ValidationError:
                continue  # a host name, or a scoped address no other node reaches
    return sorted(addresses)[: db_ops.MAX_HOSTS]


def sync_db_server(node: Node) -> bool:
    """The `dbserver` synchronizer: the node's MariaDB listens on its cluster address and accepts 3306 from
    the cluster's web nodes only (PUT /v1/dbserver; the agent writes nothing when nothing changed)."""
    try:
        bind_address = v.ip_address(node.address, "address")
    except v.ValidationError:
        raise SyncError(f"{node.name}'s address {node.address} is not an IP address: MariaDB needs one to listen "
                        "on; change the node's address") from None
    body = {"bind_address": bind_address, "cluster": web_node_addresses()}
    try:
        node_service.agent_client(node, 120).put("/v1/dbserver", body)
    except AgentError as exc:
        payload = exc.payload if isinstance(exc.payload, dict) else {}
        raise SyncError(f"the db server setup failed on {node.name}: {payload.get('error') or exc}") from None
    return True


def resync_db_servers() -> None:
    """The cluster's web nodes changed: every db node is told again which addresses may connect."""
    for node in db.session.scalars(select(Node)):
        if "db" in (node.roles or []):
            register_desync(node, "dbserver")
