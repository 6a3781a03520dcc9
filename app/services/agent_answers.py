"""What the master takes from a node's agent: the shape of every answer it stores or acts on.

A node is not trusted to answer well: a compromised or broken one may send any JSON. The statistics
document and the listings of user data are checked here before anything is stored or indexed; a
wrong shape refuses that node's answer as a whole (AgentError kind "answer", naming the node's URL
and the field), and the caller records it against that node only.
"""

from __future__ import annotations

import math

from agent import validation as v
from agent.client import AgentError


class ShapeError(ValueError):
    """An answer field of the wrong type or form; field names it as a path (memory.total, items[3].owner)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


def refused(url: str, what: str, exc: ShapeError) -> AgentError:
    """An answer of the wrong shape as the AgentError the callers already handle per node."""
    return AgentError("answer", f"{url}: the agent's {what} was refused: {exc}; nothing of it was used", url=url)


def _object(value: object, field: str) -> dict:
    if not isinstance(value, dict):
        raise ShapeError(field, f"must be a JSON object, not {type(value).__name__}")
    return value


def _text(value: object, field: str, max_length: int = 2000, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or len(value) > max_length:
        raise ShapeError(field, f"must be a string of at most {max_length} characters")
    return value


def _number(value: object, field: str, optional: bool = False) -> float | int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ShapeError(field, "must be a finite number, not negative")
    return value


def _count(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ShapeError(field, "must be a whole number, not negative")
    return value


def _names(value: object, field: str) -> list[str]:
    if not isinstance(value, list):
        raise ShapeError(field, "must be a list")
    return [_text(item, f"{field}[{i}]", 200) for i, item in enumerate(value)]


# ---------------------------------------------------------------- /v1/stats

SOFTWARE_TEXT = ("state", "current", "error", "note")
SOFTWARE_NUMBERS = ("percent", "started_at", "finished_at")


def _figures(value: object, field: str, numbers: tuple[str, ...]) -> dict:
    doc = _object(value, field)
    return {name: _number(doc.get(name), f"{field}.{name}") for name in numbers}


def _software(value: object) -> dict:
    doc = _object(value, "software")
    software: dict = {name: _text(doc.get(name), f"software.{name}", optional=True)
                      for name in SOFTWARE_TEXT if name in doc}
    software.update({name: _number(doc.get(name), f"software.{name}", optional=True)
                     for name in SOFTWARE_NUMBERS if name in doc})
    for name in ("roles", "previous_roles"):
        if doc.get(name) is not None:
            software[name] = _names(doc[name], f"software.{name}")
    if doc.get("packages") is not None:
        packages = _object(doc["packages"], "software.packages")
        software["packages"] = {_text(k, "software.packages", 200): _text(s, f"software.packages.{k}", 40)
                                for k, s in packages.items()}
    return software


def _roles(value: object) -> dict:
    roles = {}
    for role, report in _object(value, "roles").items():
        report = _object(report, f"roles.{role}")
        if not isinstance(report.get("installed"), bool):
            raise ShapeError(f"roles.{role}.installed", "must be true or false")
        roles[_text(role, "roles", 40)] = {"installed": report["installed"],
                                           "missing": _names(report.get("missing", []), f"roles.{role}.missing")}
    return roles


def _usage(value: object) -> dict:
    doc = _object(value, "usage")
    owners = _object(doc.get("owners") or {}, "usage.owners")
    return {
        "measured_at": _number(doc.get("measured_at"), "usage.measured_at", optional=True),
        "owners": {_text(name, "usage.owners", 64): _count(size, f"usage.owners.{name}")
                   for name, size in owners.items()},
    }


def _lists(value: object) -> dict:
    held = {}
    for name, head in _object(value, "lists").items():
        head = _object(head, f"lists.{name}")
        held[_text(name, "lists", 64)] = {"version": _count(head.get("version"), f"lists.{name}.version"),
                                          "hash": _text(head.get("hash"), f"lists.{name}.hash", 128)}
    return held


def check_stats(document: object, supported_api_versions) -> dict:
    """The statistics document with only the fields the master reads, each checked; raises ShapeError.

    Of an agent speaking another API version only its versions are kept (the node is `incompatible`
    and nothing else of its document is read)."""
    doc = _object(document, "the document")
    api_version = doc.get("api_version")
    if isinstance(api_version, bool) or not isinstance(api_version, int):
        raise ShapeError("api_version", "must be a whole number")
    agent_version = _text(doc.get("agent_version"), "agent_version", 64, optional=True)
    if api_version not in supported_api_versions:
        return {"api_version": api_version, "agent_version": agent_version}
    load = doc.get("load")
    if not isinstance(load, list) or len(load) > 3:
        raise ShapeError("load", "must be a list of at most 3 numbers")
    checked = {
        "api_version": api_version,
        "agent_version": agent_version,
        "uptime_s": _number(doc.get("uptime_s"), "uptime_s"),
        "load": [_number(x, f"load[{i}]") for i, x in enumerate(load)],
        "memory": _figures(doc.get("memory"), "memory", ("total", "available", "used_percent")),
        "disk": _figures(doc.get("disk"), "disk", ("total", "free", "used_percent")),
        "roles": _roles(doc.get("roles", {})),
        "software": _software(doc.get("software") or {"state": "idle"}),
        "usage": _usage(doc.get("usage") or {}),
        "lists": _lists(doc.get("lists") or {}),
    }
    if "path" in (doc.get("disk") or {}):
        checked["disk"]["path"] = _text(doc["disk"]["path"], "disk.path", 4096)
    return checked


# ---------------------------------------------------------------- listings of user data


def _key(kind_key: str, value: object, field: str) -> str:
    """A record's name (or a mailbox's address) exactly as the agent's own validator writes it."""
    check = v.email_address if kind_key == "address" else v.domain_name
    try:
        canonical = check(value, field)
    except v.ValidationError as exc:
        raise ShapeError(field, exc.message) from None
    if canonical != value:
        raise ShapeError(field, f"{value!r} is not in the form the agent writes ({canonical!r})")
    return canonical


def _owner(value: object, field: str) -> str:
    try:
        name = v.username(value, field)
    except v.ValidationError as exc:
        raise ShapeError(field, exc.message) from None
    if name != value:
        raise ShapeError(field, f"{value!r} is not an account name")
    return name


def check_listing(payload: object, kind_key: str, with_owner: bool, db_object: str | None = None) -> list[dict]:
    """A listing's items ({"items": [...]}), each an object whose key (its name, or a mailbox's address)
    is in the form the agent's own validator writes and, for kinds that carry one, whose owner is an
    account name; raises ShapeError naming the first item at fault. db_object ("database", "user"): the
    key is a database or database user name under its owner's prefix instead of a domain name."""
    items = _object(payload, "the listing").get("items")
    if not isinstance(items, list):
        raise ShapeError("items", "must be a list")
    for i, item in enumerate(items):
        item = _object(item, f"items[{i}]")
        if db_object is not None:
            owner = _owner(item.get("owner"), f"items[{i}].owner")
            try:
                v.db_object_name(item.get(kind_key), owner, f"items[{i}].{kind_key}", kind=db_object)
            except v.ValidationError as exc:
                raise ShapeError(exc.field, exc.message) from None
            continue
        _key(kind_key, item.get(kind_key), f"items[{i}].{kind_key}")
        if with_owner:
            _owner(item.get("owner"), f"items[{i}].owner")
    return items
