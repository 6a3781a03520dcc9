"""Hosting plans (ISPmanager's presets): a named set of limits and allowed roles (docs/ispmgr.md, "Plans")."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import utcnow
from app.models.userdata import LIMIT_KEYS

# A plan limits what Hostfleet enforces today (LIMIT_KEYS) and the kinds still to come, whose values a
# plan keeps so billing systems can set them now.
PLAN_LIMIT_KEYS = (*LIMIT_KEYS, "ftp_users")


class Plan(db.Model):
    """A named set of limits and allowed roles that users are given; their own limits override it."""

    __tablename__ = "plans"
    # SQLite AUTOINCREMENT: an id a page, a client or a log names is never given to another plan later.
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    # {"webdomains": 10, ...}; a missing key or None means no limit.
    limits: Mapped[dict] = mapped_column(JSON, default=dict)
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
