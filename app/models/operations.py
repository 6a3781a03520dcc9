"""Background operations: one row per RQ job, with per-node outcomes."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import utcnow


class OperationStatus(enum.StrEnum):
    """Where an operation is; the last four are final."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PARTIAL = "partial"
    FAILED = "failed"
    REFUSED = "refused"

    @property
    def finished(self) -> bool:
        """True once the operation will not change any more."""
        return self not in (OperationStatus.QUEUED, OperationStatus.RUNNING)


class NodeOutcome(enum.StrEnum):
    """What happened on one target node."""

    PENDING = "pending"
    APPLIED = "applied"
    FAILED = "failed"
    UNAVAILABLE = "unavailable"


class Operation(db.Model):
    """A background job as the user sees it: what, who, when, status and per-node outcome."""

    __tablename__ = "operations"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(255))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), default=OperationStatus.QUEUED.value)
    message: Mapped[str] = mapped_column(Text, default="")
    rq_job_id: Mapped[str | None] = mapped_column(String(64))
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    log: Mapped[str] = mapped_column(Text, default="")
    # Times recovery queued it again after its job was lost or abandoned before its first step.
    requeues: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    created_by = relationship("User")
    nodes: Mapped[list[OperationNode]] = relationship(
        back_populates="operation", cascade="all, delete-orphan", order_by="OperationNode.id"
    )

    @property
    def op_status(self) -> OperationStatus:
        """The status as an enum member."""
        return OperationStatus(self.status)


class OperationNode(db.Model):
    """The outcome of an operation on one target node."""

    __tablename__ = "operation_nodes"

    id: Mapped[int] = mapped_column(primary_key=True)
    operation_id: Mapped[int] = mapped_column(
        ForeignKey("operations.id", ondelete="CASCADE"), index=True
    )
    node_id: Mapped[int | None] = mapped_column(ForeignKey("nodes.id", ondelete="SET NULL"))
    node_name: Mapped[str] = mapped_column(String(63))
    outcome: Mapped[str] = mapped_column(String(16), default=NodeOutcome.PENDING.value)
    error: Mapped[str | None] = mapped_column(Text)

    operation: Mapped[Operation] = relationship(back_populates="nodes")
