"""Databases and database users: user data on the owner's `db` node (docs/agent-ops.md, "Databases").

Names are `<owner>_<name>` as on ISPmanager: a name given without the owner's prefix gets it, and the
answer says so. Every field is checked here with the agent's own validators (the engine's name limits
included) before anything is claimed or sent. A password goes to the node only, which keeps MariaDB's
hash of it; the master stores and returns none.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from sqlalchemy import select

from agent import validation as v
from agent.ops import db as db_ops
from app.extensions import db, kept_on_commit
from app.models import DatabaseIndex, Node, User
from app.services.dbserver import web_node_addresses
from app.services.userdata.errors import UserDataError, invalid, object_body, validated
from app.services.userdata.index import end_write, get_row
from app.services.userdata.kinds import KINDS, UPDATE_FIELDS
from app.services.userdata.owners import account_of
from app.services.userdata.proxy import send_change

# The name check of each kind: the engine's own limit differs for a database and a user.
DB_OBJECT = {"databases": "database", "dbusers": "user"}


def prefixed(owner: User, value: object, field: str, kind_name: str) -> tuple[str, str | None]:
    """The name with the owner's prefix (added when missing), checked; and the notice of the added prefix."""
    prefix = f"{owner.name}_"
    notice = None
    if isinstance(value, str) and value and not value.startswith(prefix):
        value, notice = prefix + value, f"{field} prefixed with {prefix}: {prefix + value}"
    name = validated(lambda val: v.db_object_name(val, owner.name, field, kind=DB_OBJECT[kind_name]), value)
    return name, notice


def require_db_role(owner: User) -> None:
    """Refuse, naming `owner`, an owner whose account (or plan) does not allow the db role."""
    account = account_of(owner)
    if account is not None and "db" not in (account.roles or []):
        raise UserDataError(403, f"{owner.name} is not allowed the db role (their account or plan has no "
                                 "databases); nothing was created.",
                            {"owner": f"{owner.name} has no db role"})


def new_body(kind_name: str, owner: User, data: dict) -> tuple[dict, list[str]]:
    """The agent's body for a new database or database user, every field checked; the notices."""
    name, notice = prefixed(owner, data.get("name"), "name", kind_name)
    notices = [notice] if notice else []
    if kind_name == "databases":
        engine = validated(db_ops.validate_engine, data)
        charset, collation = validated(db_ops.validate_charset, data)
        return {"name": name, "owner": owner.name, "engine": engine, "charset": charset,
                "collation": collation}, notices
    validated(v.password, data.get("password"), "password")
    databases, more = own_databases(owner, data.get("databases"))
    return {"name": name, "owner": owner.name, "password": data["password"], "hosts": web_node_addresses(),
            "databases": databases}, notices + more


def own_databases(owner: User, value: object, field: str = "databases") -> tuple[list[str], list[str]]:
    """Names of the owner's indexed databases (prefixed when given without it); each other one is refused
    naming its place in the list."""
    if value is None:
        return [], []
    if not isinstance(value, list):
        raise invalid(field, "must be a list of database names")
    if len(value) > 1000:
        raise invalid(field, "more than 1000 databases")
    names, notices = [], []
    for i, item in enumerate(value):
        name, notice = own_database(owner, item, f"{field}[{i}]")
        if notice:
            notices.append(notice)
        if name not in names:
            names.append(name)
    return names, notices


def own_database(owner: User, value: object, field: str) -> tuple[str, str | None]:
    """One of the owner's databases, by name (prefix added when missing)."""
    name, notice = prefixed(owner, value, field, "databases")
    held = db.session.scalar(select(DatabaseIndex.id).where(
        DatabaseIndex.name == name, DatabaseIndex.owner_id == owner.id, DatabaseIndex.claimed_at.is_(None)))
    if held is None:
        raise invalid(field, f"{owner.name} has no database {name}")
    return name, notice


def change_body(row, data: dict) -> tuple[dict, list[str]]:
    """A database user's change: a new password, or the set of databases it is granted."""
    data = object_body(data, UPDATE_FIELDS["dbusers"])
    body: dict = {}
    notices: list[str] = []
    if "password" in data:
        body["password"] = validated(v.password, data["password"], "password")
    if "databases" in data:
        body["databases"], notices = own_databases(row.owner, data["databases"])
    if not body:
        raise invalid("body", "give password or databases")
    return body, notices


def owner_path(kind_name: str, row, *rest: str) -> str:
    """The agent's path of one record, scoped to its owner (`?owner=`: another's is not found)."""
    parts = [quote(row.name, safe="")] + [quote(p, safe="") for p in rest]
    return f"{KINDS[kind_name].path}/{'/'.join(parts)}?{urlencode({'owner': row.owner.name})}"


def connection(node: Node, database: str) -> dict:
    """What an application needs to reach the database (from the cluster's web nodes)."""
    return {"host": node.address, "port": db_ops.PORT, "database": database}


@kept_on_commit()
def grant(actor: User, row_id: int, data: object) -> dict:
    """Grant a database user all privileges on one more of its owner's databases."""
    row = get_row("dbusers", actor, row_id)
    data = object_body(data, ("database",))
    database, notice = own_database(row.owner, data.get("database"), "database")
    what = f"{row.owner.name}'s database user {row.name}"
    result, mark_id = send_change(row.node, "dbusers", row.name, "POST", owner_path("dbusers", row, "grants"),
                                  {"database": database}, what)
    end_write(mark_id)
    return shaped_user(result, row, [notice] if notice else [])


@kept_on_commit()
def revoke(actor: User, row_id: int, database: str) -> dict:
    """Take back a database user's grant on one database."""
    row = get_row("dbusers", actor, row_id)
    database = validated(lambda val: v.db_object_name(val, row.owner.name, "database", kind="database"), database)
    what = f"{row.owner.name}'s database user {row.name}"
    result, mark_id = send_change(row.node, "dbusers", row.name, "DELETE",
                                  owner_path("dbusers", row, "grants", database), None, what)
    end_write(mark_id)
    return shaped_user(result, row, [])


def shaped_user(result: object, row, notices: list[str]) -> dict:
    record = {k: val for k, val in (result if isinstance(result, dict) else {}).items()
              if k not in ("password", "hash")}
    shaped = {**record, "id": row.id, "owner": row.owner.name, "node": row.node.name, "state": "ready"}
    if notices:
        shaped["notices"] = notices
    return shaped
