"""System-wide lists and the record of each distributed request that changes one (docs/distributed-requests.md)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import utcnow


class SystemList(db.Model):
    """The master's canonical copy of one system-wide list: rows, version and content hash."""

    __tablename__ = "system_lists"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(default=0)
    hash: Mapped[str] = mapped_column(String(64))
    rows: Mapped[list] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    operation_id: Mapped[int | None] = mapped_column(ForeignKey("operations.id", ondelete="SET NULL"))


class ListChange(db.Model):
    """One distributed request: the change asked for, the versions before and after, and whether
    the master committed it. `committed` is written in the same transaction as the master's list,
    so after any crash it says which of the two lists the master holds."""

    __tablename__ = "list_changes"

    operation_id: Mapped[int] = mapped_column(
        ForeignKey("operations.id", ondelete="CASCADE"), primary_key=True
    )
    list_name: Mapped[str] = mapped_column("list", String(32), index=True)
    action: Mapped[str] = mapped_column(String(8))
    row_id: Mapped[int | None] = mapped_column()
    row: Mapped[dict | None] = mapped_column(JSON)
    base_version: Mapped[int | None] = mapped_column()
    base_hash: Mapped[str | None] = mapped_column(String(64))
    new_version: Mapped[int | None] = mapped_column()
    new_hash: Mapped[str | None] = mapped_column(String(64))
    new_rows: Mapped[list | None] = mapped_column(JSON)
    # Nodes that already had a desync for the list before this request registered its own.
    prior_desyncs: Mapped[list | None] = mapped_column(JSON)
    committed: Mapped[bool] = mapped_column(default=False)

    operation = relationship("Operation")
