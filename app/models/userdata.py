"""User data: where each user's roles live, their UID/GID, and the master's index of their data.

The index holds only owner, name and node (docs/user-data.md): the data itself lives on the node's agent.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.orm import Mapped, declared_attr, mapped_column, relationship

from app.extensions import db
from app.models.accounts import User
from app.models.base import utcnow
from app.models.cluster import Node

USER_ROLES = ("web", "dns", "mail", "db")
# The roles a new user or plan gets unless others are given: `db` is asked for (a cluster may have no db node,
# and a user's roles are placed when the user is made).
DEFAULT_ROLES = ("web", "dns", "mail")
LIMIT_KEYS = ("webdomains", "domains", "maildomains", "mailboxes", "databases", "dbusers", "disk_mb")


class UserAccount(db.Model):
    """A panel user's hosting account: OS UID/GID (the same on every node), roles and limits."""

    __tablename__ = "user_accounts"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    uid: Mapped[int] = mapped_column(unique=True)
    gid: Mapped[int] = mapped_column()
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    # {"webdomains": 10, ...}; a missing key or None means no limit.
    limits: Mapped[dict] = mapped_column(JSON, default=dict)
    # The plan (app/models/plans.py) whose limits apply where the account's own do not; a plan in use
    # cannot be deleted.
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id", ondelete="RESTRICT"), index=True)
    # The account's SFTP password as the nodes' PAM checks it: sha512-crypt of the panel password, made
    # when that is set (app/services/os_passwords.py); None until the password is set with the account there.
    os_password_hash: Mapped[str | None] = mapped_column(String(255))
    # OpenSSH public keys (authorized_keys lines, agent/validation.py `ssh_public_key`) for SFTP logins.
    ssh_keys: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    user: Mapped[User] = relationship()


class Counter(db.Model):
    """A number the master hands out and never takes back (`uid`: the last UID given to an account)."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column()


class PlacementDecision(db.Model):
    """Why a user's role went to a node: every node's score or the reason it was excluded."""

    __tablename__ = "placement_decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    node_id: Mapped[int | None] = mapped_column(ForeignKey("nodes.id", ondelete="SET NULL"))
    # "auto" (the formula) or "admin" (picked explicitly).
    chosen_by: Mapped[str] = mapped_column(String(8), default="auto")
    resource: Mapped[str] = mapped_column(String(16))
    # [{"node_id", "node", "users", "weight", "free", "score", "excluded"}]
    candidates: Mapped[list] = mapped_column(JSON, default=list)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Placement(db.Model):
    """The node that holds one role of one user (exactly one: docs/user-data.md, "Placement")."""

    __tablename__ = "placements"
    __table_args__ = (UniqueConstraint("user_id", "role", name="uq_placements_user_role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"), index=True)
    decision_id: Mapped[int | None] = mapped_column(ForeignKey("placement_decisions.id", ondelete="SET NULL"))

    node: Mapped[Node] = relationship()
    decision: Mapped[PlacementDecision | None] = relationship()


def reversed_name(name: str) -> str:
    """A name's labels in reverse order ("shop.example.com" → "com.example.shop"): the names under a
    name all start with its reversed name and a dot, so one range of an index finds them."""
    return ".".join(reversed(name.split(".")))


def _reversed_default(context: DefaultExecutionContext) -> str:
    """The reversed_name of the row being inserted, from its name."""
    return reversed_name(context.get_current_parameters()["name"])


# Compared by bytes: on PostgreSQL a language collation orders "." and "/" by other rules, and the
# registry's range of children ("com.example." to "com.example/") relies on the byte order.
REVERSED_NAME = String(253).with_variant(String(253, collation="C"), "postgresql")


class Registered:
    """An index row whose name the name registry reads (app/services/names.py): its reversed name is
    kept beside it, filled in from the name on insert."""

    reversed_name: Mapped[str | None] = mapped_column(REVERSED_NAME, default=_reversed_default, index=True)


class Claimable:
    """An index row that can be a claim: claimed_at is set while its create is in flight.

    The create writes the row as a claim before the node is asked (the name is unique in the index,
    so two creates of one name cannot both reach a node) and clears claimed_at once the node has
    confirmed. Lists show a claim as being created; nothing else opens or counts it as made. One left
    behind by a crash or a timeout is settled from the node's listing at the next poll.
    """

    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)

    @declared_attr.directive
    def __table_args__(cls) -> tuple:
        # Only the claims are indexed (the poll looks for them): an index over every row's NULL would
        # lead the planner to it for `claimed_at IS NULL` (lookups by id, the zone for new records)
        # and away from the indexes that serve those.
        claims = text("claimed_at IS NOT NULL")
        # AUTOINCREMENT: SQLite would give a new row the id of the highest one deleted before it, and an id a
        # client holds, or a write in flight, must never come to name another record (PostgreSQL never reuses).
        return (Index(f"ix_{cls.__tablename__}_claimed_at", "claimed_at", sqlite_where=claims,
                      postgresql_where=claims), {"sqlite_autoincrement": True})


class WebDomainIndex(Registered, Claimable, db.Model):
    """Index row of a web domain held by a node's agent."""

    __tablename__ = "webdomain_index"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(253), unique=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"), index=True)

    owner: Mapped[User] = relationship()
    node: Mapped[Node] = relationship()


class DomainIndex(Registered, Claimable, db.Model):
    """Index row of a domain name (DNS zone) held by a node's agent."""

    __tablename__ = "domain_index"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(253), unique=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"), index=True)

    owner: Mapped[User] = relationship()
    node: Mapped[Node] = relationship()


class MailDomainIndex(Registered, Claimable, db.Model):
    """Index row of a mail domain held by a node's agent."""

    __tablename__ = "maildomain_index"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(253), unique=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"), index=True)

    owner: Mapped[User] = relationship()
    node: Mapped[Node] = relationship()


class WebDomainAlias(Registered, db.Model):
    """An alias of a web domain (another name its site answers), indexed so the name registry sees it."""

    __tablename__ = "webdomain_aliases"

    id: Mapped[int] = mapped_column(primary_key=True)
    webdomain_id: Mapped[int] = mapped_column(ForeignKey("webdomain_index.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(253), unique=True)


class NameOverride(db.Model):
    """An administrator let an owner hold a name the registry refused: who, when, and what was refused."""

    __tablename__ = "name_overrides"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(253), index=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    granted_by: Mapped[str] = mapped_column(String(64))
    granted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    refused: Mapped[str] = mapped_column(Text)

    owner: Mapped[User] = relationship()


class MailboxIndex(Claimable, db.Model):
    """Index row of a mailbox; it belongs to its mail domain's owner and node."""

    __tablename__ = "mailbox_index"

    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(String(320), unique=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"), index=True)

    owner: Mapped[User] = relationship()
    node: Mapped[Node] = relationship()


class DatabaseIndex(Claimable, db.Model):
    """Index row of a customer's database held by a db node's agent (`<owner>_<name>`)."""

    __tablename__ = "database_index"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"), index=True)

    owner: Mapped[User] = relationship()
    node: Mapped[Node] = relationship()


class DbUserIndex(Claimable, db.Model):
    """Index row of a database user held by a db node's agent (never its password)."""

    __tablename__ = "dbuser_index"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"), index=True)

    owner: Mapped[User] = relationship()
    node: Mapped[Node] = relationship()


class PendingWrite(db.Model):
    """A change or delete sent to an agent whose index update is not committed yet (a create uses a
    claim in the index instead: Claimable).

    Written before the agent call and removed with the index update, so a master that dies in
    between leaves this row behind and the next poll reconciles that node from its agent.
    """

    __tablename__ = "pending_writes"

    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
