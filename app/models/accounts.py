"""Panel accounts and their API tokens."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING

from flask_login import UserMixin
from sqlalchemy import DateTime, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import utcnow

if TYPE_CHECKING:
    from app.models.userdata import UserAccount


class UserLevel(enum.StrEnum):
    """Access levels: administrators see the whole cluster, users only their own data."""

    ADMIN = "admin"
    USER = "user"


class User(UserMixin, db.Model):
    """A panel account (administrator or hosting customer)."""

    __tablename__ = "users"
    # SQLite AUTOINCREMENT: an id a page, a client or a log names is never given to another account later.
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(32), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    level: Mapped[str] = mapped_column(String(16), default=UserLevel.USER.value)
    active: Mapped[bool] = mapped_column(default=True)
    # ISPmanager's user fields a billing system sets and reads back: the customer's name and a note.
    fullname: Mapped[str] = mapped_column(String(128), default="", server_default="")
    comment: Mapped[str] = mapped_column(String(1024), default="", server_default="")
    # Bumped on password change so existing sessions of this account stop being valid.
    session_epoch: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    tokens: Mapped[list[ApiToken]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )
    # Read-only: the API token check loads it with the user, so the user-data checks that read the
    # account (users.account_of) find it in the session instead of asking the database again.
    account: Mapped[UserAccount | None] = relationship("UserAccount", viewonly=True, uselist=False)

    @property
    def is_admin(self) -> bool:
        """True for administrators."""
        return self.level == UserLevel.ADMIN.value

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive (suspended) accounts.
        return self.active

    def get_id(self) -> str:
        """Session identity: the id plus the epoch, so a password change ends old sessions."""
        return f"{self.id}:{self.session_epoch}"


class ApiToken(db.Model):
    """A Bearer token for the JSON API; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"
    # SQLite AUTOINCREMENT: an id a page, a client or a log names is never given to another token later.
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    user: Mapped[User] = relationship(back_populates="tokens")
