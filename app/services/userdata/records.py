"""The records of a DNS zone, read from and changed on the zone's node."""

from __future__ import annotations

from agent.ops import dns
from app.extensions import kept_on_commit
from app.models import DomainIndex, User
from app.services.userdata.errors import UserDataError, invalid, object_body, validated
from app.services.userdata.index import end_write, get_row
from app.services.userdata.kinds import RECORD_FIELDS
from app.services.userdata.proxy import call_agent, send_change


def _zone_row(actor: User, domain_id: int) -> DomainIndex:
    """A zone the actor may see."""
    return get_row("domains", actor, domain_id)


def list_records(actor: User, domain_id: int) -> list[dict]:
    """The records of a zone, read from its node."""
    row = _zone_row(actor, domain_id)
    zone = call_agent(row.node, "GET", f"/v1/domains/{row.name}", what=f"{row.owner.name}'s domain {row.name}")
    return [public_record(r) for r in zone["records"]]


def public_record(record: dict) -> dict:
    """A record as the API shows it (its data as `value`)."""
    return {"id": record["id"], "name": record["name"], "type": record["type"],
            "value": record.get("data", record.get("value")), "ttl": record["ttl"],
            "priority": record.get("priority")}


@kept_on_commit()
def add_record(actor: User, domain_id: int, data: object) -> dict:
    """Add a record to a zone, checked here with the agent's validators first."""
    row = _zone_row(actor, domain_id)
    data = object_body(data, RECORD_FIELDS)
    validated(dns.validate_record, row.name, data, 0)
    what = f"{row.owner.name}'s domain {row.name}"
    result, mark_id = send_change(row.node, "domains", row.name, "POST", f"/v1/domains/{row.name}/records", data, what)
    end_write(mark_id)
    return public_record(result)


@kept_on_commit()
def update_record(actor: User, domain_id: int, record_id: int, data: object) -> dict:
    """Replace a record's fields (the zone's serial goes up on the node)."""
    row = _zone_row(actor, domain_id)
    data = object_body(data, (*RECORD_FIELDS, "id"))
    what = f"{row.owner.name}'s domain {row.name}"
    zone = call_agent(row.node, "GET", f"/v1/domains/{row.name}", what=what)
    old = next((r for r in zone["records"] if r["id"] == record_id), None)
    if old is None:
        raise UserDataError(404, f"No record {record_id} in {row.name}.")
    data.pop("id", None)
    if "value" not in data:
        raise invalid("value", "required")
    merged = {"name": old["name"], "type": old["type"], "ttl": old["ttl"], "priority": old["priority"], **data}
    validated(dns.validate_record, row.name, merged, record_id)
    path = f"/v1/domains/{row.name}/records/{record_id}"
    result, mark_id = send_change(row.node, "domains", row.name, "PUT", path, data, what)
    end_write(mark_id)
    return public_record(result)


@kept_on_commit()
def delete_record(actor: User, domain_id: int, record_id: int) -> None:
    """Remove one record."""
    row = _zone_row(actor, domain_id)
    what = f"{row.owner.name}'s domain {row.name}"
    path = f"/v1/domains/{row.name}/records/{record_id}"
    _, mark_id = send_change(row.node, "domains", row.name, "DELETE", path, None, what)
    end_write(mark_id)
