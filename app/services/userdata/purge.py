"""Removing everything a user holds on one node, then their OS account there (a user's deletion)."""

from __future__ import annotations

from urllib.parse import urlencode

from app.extensions import db
from app.models import Node, Placement, User
from app.services.userdata.errors import UserDataError
from app.services.userdata.kinds import KINDS
from app.services.userdata.owners import node_outcome, remove_os_account
from app.services.userdata.proxy import call_agent


def purge_node(user: User, node: Node) -> dict:
    """Delete everything the user owns on one node, then the OS account."""
    entry = {"node_id": node.id, "node": node.name, "outcome": "applied", "removed": [], "error": None}
    what = f"{user.name}'s data"
    try:
        try:
            # One apply per service on the node, however much the user holds there.
            removed = call_agent(node, "DELETE", f"/v1/users/{user.name}/data", what=what)
        except UserDataError as exc:
            if exc.status != 404:
                raise
            removed = _purge_one_by_one(user, node, what)  # an agent older than the route
        for kind_name in PURGE_ORDER:
            kind = KINDS[kind_name]
            keys = removed.get(kind_name) or []
            for start in range(0, len(keys), 1000):  # under every database's limit of bound parameters
                chunk = keys[start:start + 1000]
                db.session.execute(kind.model.__table__.delete().where(getattr(kind.model, kind.key).in_(chunk)))
            entry["removed"] += [f"{kind.label} {key}" for key in keys]
        error = remove_os_account(node, user.name)
        if error:
            raise UserDataError(502, error)
        for kind in KINDS.values():
            db.session.execute(kind.model.__table__.delete().where(kind.model.owner_id == user.id,
                                                                   kind.model.node_id == node.id))
        db.session.execute(Placement.__table__.delete().where(Placement.user_id == user.id,
                                                              Placement.node_id == node.id))
    except UserDataError as exc:
        entry["outcome"] = node_outcome(exc)
        entry["error"] = exc.message
    db.session.commit()
    return entry


# Mailboxes go before their mail domains (a node refuses a mail domain that still has mailboxes), database
# users before the databases they are granted.
PURGE_ORDER = ("mailboxes", "maildomains", "webdomains", "domains", "dbusers", "databases")


def _purge_one_by_one(user: User, node: Node, what: str) -> dict[str, list[str]]:
    """What DELETE /v1/users/<name>/data does, one record per call: the owner's records as the node
    lists them, each deleted. Each deletion is a whole apply on the node."""
    mine = "?" + urlencode({"owner": user.name})  # the node lists only this owner's records
    maildomains = [d["name"] for d in call_agent(node, "GET", "/v1/maildomains" + mine, what=what)["items"]
                   if d.get("owner") == user.name]
    removed = {
        "maildomains": maildomains,
        "mailboxes": [m["address"] for m in call_agent(node, "GET", "/v1/mailboxes" + mine, what=what)["items"]
                      if m["address"].rpartition("@")[2] in maildomains],
    }
    for kind_name in ("webdomains", "domains"):
        items = call_agent(node, "GET", KINDS[kind_name].path + mine, what=what)["items"]
        removed[kind_name] = [i["name"] for i in items if i.get("owner") == user.name]
    for kind_name in PURGE_ORDER:
        for key in removed.get(kind_name, []):
            call_agent(node, "DELETE", f"{KINDS[kind_name].path}/{key}", what=what)
    return removed
