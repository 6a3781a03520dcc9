"""ISPmanager's database funcs (`db`, `db.edit`, `db.delete`) onto the databases and database users of
app/services/userdata (docs/ispmgr.md, "Databases"): the same owner, name, `db` role and limit rules as
/api/v1/databases and /api/v1/dbusers. Names are `<owner>_<name>` as on ISPmanager; a name given without
the prefix gets it."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from app.extensions import db
from app.ispmgr.doc import Element, IspError, new_doc
from app.ispmgr.funcs import Call, elids
from app.ispmgr.userdata_funcs import Family, listed_rows, refused, visible_row
from app.models import DbUserIndex, User
from app.services import userdata
from app.services.userdata import KINDS, UserDataError
from app.services.userdata import databases as dbs
from app.services.userdata.checks import resolve_owner

# ISPmanager's parameters and the services' fields (for the `object` of an error).
DATABASE = Family("databases", "name", {"name": "name", "owner": "owner", "charset": "charset",
                                        "collation": "collation"})
DB_USER = Family("dbusers", "username", {"username": "name", "owner": "owner", "password": "password",
                                         "name": "databases"})
# Database users are ISPmanager's `user` (an existing one) or `username` (a new one) of db.edit.
NEW_USER = ("", "*")


def _key(key: str) -> str:
    """A database's key: its name; ISPmanager's `name->server` form is taken as the name (one db server per
    owner here)."""
    return key.partition("->")[0]


def db_list(call: Call) -> Element:
    """elem per database: name, owner, type, server (the node), active."""
    doc = new_doc(call.func)
    for row in listed_rows(DATABASE, call):
        elem = doc.add("elem")
        elem.add("name", row.name)
        elem.add("owner", row.owner.name)
        elem.add("type", "mysql")
        elem.add("server", row.node.name)
        elem.add("active", "on" if row.claimed_at is None else "off")
    return doc


def _password(call: Call) -> str | None:
    """db.edit's `password`, checked against `confirm` when confirm is given."""
    password = call.get("password")
    if password is not None and call.get("confirm") is not None and call.get("confirm") != password:
        raise IspError("value", "confirm", "confirm does not match password")
    return password


def _owner_user(call: Call, owner: User, name: str, param: str):
    """The owner's database user of that name (prefix added when missing), None when there is none."""
    try:
        full, _ = dbs.prefixed(owner, name, param, "dbusers")
    except UserDataError as exc:
        raise IspError("value", param, exc.message, name[:64]) from None
    return db.session.scalar(userdata.visible(KINDS["dbusers"], call.actor).where(
        DbUserIndex.name == full, DbUserIndex.owner_id == owner.id))


@dataclass
class Grant:
    """The database user db.edit names: an existing one (`row`) or a new one (`name`), and its new password."""

    name: str
    row: DbUserIndex | None
    password: str | None


def _wanted_user(call: Call, owner: User) -> Grant | None:
    """The database user to grant, every parameter checked before anything is made: `user` names an existing
    one, `username` an existing or a new one (a new one needs `password`)."""
    existing = call.get("user") or ""
    name = existing if existing not in NEW_USER else (call.get("username") or "")
    password = _password(call)
    if not name:
        if password:
            raise IspError("value", "username", "username is required with password: the database user to make")
        return None
    row = _owner_user(call, owner, name, "username" if existing in NEW_USER else "user")
    if row is None and existing not in NEW_USER:
        raise IspError("value", "user", f"{owner.name} has no database user {name[:64]}", name[:64])
    if row is None and not password:
        raise IspError("value", "password", "password is required for a new database user")
    return Grant(name, row, password or None)


def _grant(call: Call, grant: Grant, database) -> None:
    """Make the new user granted the database, or grant the existing one (and change its password if given)."""
    try:
        if grant.row is None:
            userdata.create("dbusers", call.actor, {"name": grant.name, "owner": database.owner.name,
                                                    "password": grant.password, "databases": [database.name]})
            return
        change: dict = {"databases": sorted({*_granted(call, grant.row), database.name})}
        if grant.password:
            change["password"] = grant.password
        userdata.update("dbusers", call.actor, grant.row.id, change)
    except UserDataError as exc:
        raise refused(exc, DB_USER) from None


def _granted(call: Call, row) -> list[str]:
    """The databases a database user is granted now, as its node holds them."""
    shown = userdata.show("dbusers", call.actor, row.id)
    return list(shown.get("databases") or [])


def _form(call: Call, row) -> Element:
    """db.edit's view: name, owner, type, server, charset, collation and the users granted it."""
    doc = new_doc(call.func)
    shown = {}
    if row is not None:
        try:
            shown = userdata.show("databases", call.actor, row.id)
        except UserDataError as exc:
            raise refused(exc, DATABASE) from None
    doc.add("name", row.name if row else "")
    doc.add("owner", row.owner.name if row else "")
    doc.add("type", "mysql")
    doc.add("server", row.node.name if row else "")
    doc.add("charset", shown.get("charset", ""))
    doc.add("collation", shown.get("collation", ""))
    doc.add("username", "")
    doc.add("password", "")
    if row is not None:
        users = db.session.scalars(select(DbUserIndex).where(DbUserIndex.owner_id == row.owner_id,
                                                             DbUserIndex.claimed_at.is_(None))).all()
        granted = [u.name for u in users if row.name in _granted(call, u)]
        doc.add("users", ", ".join(granted))
    return doc


def db_edit(call: Call) -> Element:
    """View (elid), create (sok: the database, and its user when `username`/`user` is given) or change (sok and
    elid: grant a database user, new or existing, or change its password)."""
    row = visible_row(DATABASE, call, _key(call.get("elid"))) if call.get("elid") else None
    if not call.saving:
        return _form(call, row)
    if row is None:
        body = {field: call.get(param) for param, field in DATABASE.params.items() if call.get(param) not in (None, "")}
        body["name"] = call.get("name") or ""
        try:
            grant = _wanted_user(call, resolve_owner(call.actor, body))
            made = userdata.create("databases", call.actor, body)
        except UserDataError as exc:
            raise refused(exc, DATABASE) from None
        row = db.session.get(KINDS["databases"].model, made["id"])
        if grant is not None:
            try:
                _grant(call, grant, row)
            except IspError as exc:
                db.session.rollback()
                _undo_database(call, made["id"], exc)
                raise
    else:
        grant = _wanted_user(call, row.owner)
        if grant is not None:
            _grant(call, grant, row)
    doc = new_doc(call.func)
    doc.add("ok")
    doc.add("id", row.name)
    return doc


def _undo_database(call: Call, row_id: int, exc: IspError) -> None:
    """The database made before its user was refused is dropped again: a failed create leaves nothing."""
    try:
        userdata.delete("databases", call.actor, row_id)
    except UserDataError as undo:
        exc.message = f"{exc.message}; the database was created and could not be removed again: {undo.message}"
        return
    exc.message = f"{exc.message}; the database was not created"


def db_delete(call: Call) -> Element:
    """Drop the databases named by elid; every key is checked first."""
    rows = [visible_row(DATABASE, call, _key(key)) for key in elids(call)]
    try:
        for row in rows:
            userdata.delete("databases", call.actor, row.id)
    except UserDataError as exc:
        raise refused(exc, DATABASE) from None
    doc = new_doc(call.func)
    doc.add("ok")
    return doc


def handlers() -> dict:
    """func → (handler, administrators only) for the databases."""
    return {"db": (db_list, False), "db.edit": (db_edit, False), "db.delete": (db_delete, False)}
