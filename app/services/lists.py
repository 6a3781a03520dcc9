"""The system-wide lists (docs/distributed-requests.md): definitions, row validation with the agent's own validators,
the master's canonical copy, and which nodes each list applies to."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import defer

from agent import liststate
from agent import validation as v
from agent.ops import cron, firewall, mail
from app.extensions import conflict_insert, db
from app.models import Node, NodeState, SystemList, User, UserAccount
from app.models.base import utcnow
from app.services.desyncs import applies_to
from app.services.errors import NotFoundError
from app.services.synchronizers import SYNCHRONIZERS
from app.services.system_accounts import SYSTEM_ACCOUNTS

ACTIONS = ("add", "edit", "delete")
# Nodes still being set up get the lists from their synchronizers, not from requests.
NOT_YET_TARGETS = {NodeState.NEW.value, NodeState.CONNECTING.value, NodeState.INSTALLING.value}
# States in which a node's agent answers and takes a full replace.
READY_STATES = {NodeState.READY.value, NodeState.SYNCING.value}
DEFAULT_AGENT_PORT = 8443


def _ports_text(ranges: list[tuple[int, int]]) -> str:
    """(low, high) ranges back to the "22,80,1000-2000" form the API shows."""
    return ",".join(str(low) if low == high else f"{low}-{high}" for low, high in ranges)


def _firewall_row(data: dict) -> dict:
    """A firewall rule as stored: validated by the agent's validator, ports in text form."""
    rule = firewall.validate_row({**data, "id": 0})
    return {
        "action": rule["action"],
        "protocol": rule["protocol"],
        "ports": _ports_text(rule["ports"]),
        "source": rule["source"],
        "comment": rule["comment"],
    }


def _scheduler_row(data: dict) -> dict:
    """A scheduler entry as stored; its user is a system account the nodes have or a panel user with an
    OS account (a node without that user's account refuses the list, and the request says so)."""
    entry = cron.validate_row({**data, "id": 0})
    if entry["user"] not in SYSTEM_ACCOUNTS and db.session.scalar(
            select(UserAccount.user_id).join(User, User.id == UserAccount.user_id).where(User.name == entry["user"])
    ) is None:
        raise v.ValidationError("user", f"no panel user or system account {entry['user']!r}: a job runs as root, "
                                        "a system account of the nodes (such as www-data) or a panel user with "
                                        "hosting roles")
    return {k: entry[k] for k in ("schedule", "user", "command", "comment", "enabled")}


def _sender_row(data: dict) -> dict:
    """A white/black list sender as stored: an address or a domain, normalized."""
    return {"sender": mail.validate_sender_row({**data, "id": 0})["sender"]}


@dataclass(frozen=True)
class ListDef:
    """One system-wide list: its synchronizer name, how people call it and its row fields."""

    name: str
    title: str
    noun: str
    fields: tuple[str, ...]
    clean_row: Callable[[dict], dict]

    @property
    def plural(self) -> str:
        """The noun for more than one: rules, entries, senders."""
        if self.noun.endswith("y") and self.noun[-2:-1] not in "aeiou":
            return self.noun[:-1] + "ies"
        return self.noun + "s"

    @property
    def roles(self) -> frozenset[str] | None:
        """The roles a node needs for this list (None: every node), from its synchronizer."""
        return SYNCHRONIZERS[self.name].roles


LISTS: dict[str, ListDef] = {
    d.name: d
    for d in (
        ListDef("firewall", "Firewall", "rule", ("action", "protocol", "ports", "source", "comment"), _firewall_row),
        ListDef("scheduler", "Scheduler", "entry", ("schedule", "user", "command", "comment", "enabled"),
                _scheduler_row),
        ListDef("mail_whitelist", "Mail whitelist", "sender", ("sender",), _sender_row),
        ListDef("mail_blacklist", "Mail blacklist", "sender", ("sender",), _sender_row),
    )
}


class RowNotFound(NotFoundError, LookupError):
    """The row an edit or delete names is not in the master's list."""

    def __init__(self, name: str, row_id: int):
        super().__init__(f"{LISTS[name].title} has no {LISTS[name].noun} with id {row_id}")
        self.row_id = row_id


def clean_row(name: str, data: object) -> dict:
    """Validate a row's fields with the agent's validators; ValidationError names the field."""
    defn = LISTS[name]
    if not isinstance(data, dict):
        raise v.ValidationError("body", "must be a JSON object")
    unknown = sorted(set(data) - set(defn.fields) - {"id"})
    if unknown:
        raise v.ValidationError(unknown[0], "unknown field")
    return defn.clean_row({k: data[k] for k in defn.fields if k in data})


def empty_hash() -> str:
    """The hash of an empty list (what an agent that never got the list holds)."""
    return liststate.list_hash([])


def get_list(name: str) -> SystemList:
    """The master's copy of a list, created empty at version 0 on first use."""
    row = db.session.get(SystemList, name, populate_existing=True)
    if row is None:
        # Concurrent first uses all find no row: insert-or-nothing, or all but one fail on the key (a 500).
        db.session.execute(conflict_insert(SystemList).values(name=name, version=0, hash=empty_hash(), rows=[],
                                                     updated_at=utcnow()).on_conflict_do_nothing())
        row = db.session.get(SystemList, name, populate_existing=True)
    return row


def heads() -> dict[str, tuple[int, str]]:
    """Every list's (version, hash) on the master, empty lists included; read from the database each
    time (columns, not objects the session may hold from an earlier read)."""
    found = {name: (version, content_hash) for name, version, content_hash in
             db.session.execute(select(SystemList.name, SystemList.version, SystemList.hash))}
    return {name: found.get(name, (0, empty_hash())) for name in LISTS}


def apply_change(name: str, rows: list[dict], action: str, row_id: int | None, row: dict | None,
                 version: int) -> list[dict]:
    """The list at `version` after an add, edit or delete (rows keep their order: the firewall's first
    match wins).

    A new row's id is past every id the list ever gave, not only past the rows it holds: every change
    moves the version on, so one past the version (or past the rows, for ids given before this rule) is
    free for good. An id a stale page or client holds then names nothing, never a newer rule.
    """
    if action == "add":
        next_id = max(max((r["id"] for r in rows), default=0), version) + 1
        return [*rows, {"id": next_id, **row}]
    if not any(r["id"] == row_id for r in rows):
        raise RowNotFound(name, row_id)
    if action == "edit":
        return [{"id": row_id, **row} if r["id"] == row_id else r for r in rows]
    return [r for r in rows if r["id"] != row_id]


def check_list(name: str, rows: list[dict], agent_ports: set[int], field: str) -> None:
    """Whole-list checks the master can make before sending: a firewall that locks everyone out."""
    if name != "firewall":
        return
    rules = [firewall.validate_row(r) for r in rows]
    for port in sorted(agent_ports or {DEFAULT_AGENT_PORT}):
        try:
            firewall.check_lockout(rules, port, ())
        except v.ValidationError as exc:
            raise v.ValidationError(field, exc.message) from None


def targets(name: str) -> list[Node]:
    """Nodes matching the list's criterion, past `installing`."""
    query = select(Node).options(defer(Node.stats)).where(Node.state.not_in(NOT_YET_TARGETS)).order_by(Node.id)
    nodes = db.session.scalars(query).all()
    return [n for n in nodes if applies_to(n, name)]


def is_ready(node: Node) -> bool:
    """A target a request is sent to: its agent answers and it is not in maintenance."""
    return node.state in READY_STATES and not node.maintenance


def list_to_dict(name: str) -> dict:
    """The list as the API shows it."""
    master = get_list(name)
    return {"items": master.rows, "version": master.version, "hash": master.hash}
