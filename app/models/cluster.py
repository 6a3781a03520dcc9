"""Cluster membership: nodes, their state history, the desync registry and the policies."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import utcnow


class NodeState(enum.StrEnum):
    """A node's lifecycle state."""

    NEW = "new"
    CONNECTING = "connecting"
    INSTALLING = "installing"
    SYNCING = "syncing"
    READY = "ready"
    UNAVAILABLE = "unavailable"
    INCOMPATIBLE = "incompatible"
    ERROR = "error"

    @property
    def in_progress(self) -> bool:
        """States the UI keeps polling for, because they change by themselves."""
        return self in IN_PROGRESS_STATES


IN_PROGRESS_STATES = {
    NodeState.NEW,
    NodeState.CONNECTING,
    NodeState.INSTALLING,
    NodeState.SYNCING,
    NodeState.UNAVAILABLE,
}


def shown_state(state: str, maintenance: bool, users_locked: bool) -> str:
    """The state a page shows: a ready node in maintenance takes no changes and one with its users locked
    takes no new users (docs/distributed-requests.md, docs/user-data.md), so such a node is shown as
    `maintenance` or `users-locked`, never as a plain `ready`."""
    if state == NodeState.READY.value:
        if maintenance:
            return "maintenance"
        if users_locked:
            return "users-locked"
    return state


class Node(db.Model):
    """A server of the cluster, reached through its agent."""

    __tablename__ = "nodes"
    # SQLite AUTOINCREMENT: an id a page, a client or a log names is never given to another node later.
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    address: Mapped[str] = mapped_column(String(255))
    agent_port: Mapped[int] = mapped_column(default=8443)
    ssh_port: Mapped[int] = mapped_column(default=22)
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    weight: Mapped[int] = mapped_column(default=100)
    state: Mapped[str] = mapped_column(String(16), default=NodeState.NEW.value)
    is_local: Mapped[bool] = mapped_column(default=False)
    maintenance: Mapped[bool] = mapped_column(default=False)
    users_locked: Mapped[bool] = mapped_column(default=False)
    agent_secret: Mapped[str | None] = mapped_column(String(128))
    cert_fingerprint: Mapped[str | None] = mapped_column(String(95))
    host_key_fingerprint: Mapped[str | None] = mapped_column(String(128))
    agent_version: Mapped[str | None] = mapped_column(String(32))
    api_version: Mapped[int | None] = mapped_column()
    last_seen: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_poll_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_poll_error: Mapped[str | None] = mapped_column(Text)
    missed_polls: Mapped[int] = mapped_column(default=0)
    stats: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The SSH setup job's progress (migration 0002): pending until step 8 registered the desyncs.
    setup_pending: Mapped[bool] = mapped_column(default=False, server_default=false())
    setup_step: Mapped[int | None] = mapped_column()
    setup_error: Mapped[str | None] = mapped_column(Text)
    setup_operation_id: Mapped[int | None] = mapped_column()

    history: Mapped[list[NodeStateChange]] = relationship(
        back_populates="node", cascade="all, delete-orphan", order_by="NodeStateChange.id.desc()"
    )
    desyncs: Mapped[list[Desync]] = relationship(
        back_populates="node", cascade="all, delete-orphan", order_by="Desync.id"
    )

    @property
    def agent_url(self) -> str:
        """Base URL of the node's agent."""
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"https://{host}:{self.agent_port}"

    @property
    def node_state(self) -> NodeState:
        """The state as an enum member."""
        return NodeState(self.state)

    @property
    def shown_state(self) -> str:
        """The state pages show (see `shown_state`)."""
        return shown_state(self.state, self.maintenance, self.users_locked)


class NodeStateChange(db.Model):
    """One row of a node's history: when, from which state, to which, and why."""

    __tablename__ = "node_state_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)

    node: Mapped[Node] = relationship(back_populates="history")


class Desync(db.Model):
    """A synchronizer assigned to a node: this node may differ from the master for that list."""

    __tablename__ = "desyncs"
    __table_args__ = (UniqueConstraint("node_id", "list", name="uq_desyncs_node_list"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"), index=True)
    list: Mapped[str] = mapped_column(String(32))
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0)
    next_try_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)

    node: Mapped[Node] = relationship(back_populates="desyncs")


class Policy(db.Model):
    """Cluster-wide policies (a single row)."""

    __tablename__ = "policies"

    id: Mapped[int] = mapped_column(primary_key=True)
    # 100 would refuse every change while one node is down; half the targets is the default.
    min_ready_percent: Mapped[int] = mapped_column(default=50)
    missed_polls: Mapped[int] = mapped_column(default=3)
    poll_interval_s: Mapped[int] = mapped_column(default=10)
    placement_resource: Mapped[str] = mapped_column(String(16), default="disk")
    node_apt_source: Mapped[str] = mapped_column(Text, default="")
