"""The `users` synchronizer: a node holds the OS account of every user placed on it
(docs/user-data.md, "UID/GID and OS accounts")."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select

from agent.client import AgentError
from app.extensions import db
from app.models import Node, Placement, User, UserAccount
from app.services.nodes import agent_client
from app.services.synchronizers import SyncError
from app.services.userdata.owners import os_account_body


def accounts_for(node: Node) -> list[tuple[User, UserAccount]]:
    """The users with any role placed on this node, with their accounts (UID/GID), by name."""
    placed = select(Placement.user_id).where(Placement.node_id == node.id)
    rows = db.session.execute(
        select(User, UserAccount).join(UserAccount, UserAccount.user_id == User.id).where(User.id.in_(placed))
        .order_by(User.name)
    ).all()
    return [(user, account) for user, account in rows]


def sync_os_accounts(node: Node) -> bool:
    """Create every account the node must hold, with the master's UID/GID (the agent's create is idempotent)."""
    client = agent_client(node, current_app.config["AGENT_TIMEOUT_S"])
    for user, account in accounts_for(node):
        try:
            client.post("/v1/users", json=os_account_body(user, account))
        except AgentError as exc:
            raise SyncError(f"the OS account of {user.name} (UID {account.uid}): {exc}") from None
    return True

