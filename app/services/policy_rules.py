"""Cluster → Policies: the values an admin may set and how each is checked."""

from __future__ import annotations

from agent import validation as v
from app.extensions import db
from app.models import Policy
from app.services.policies import get_policy

PLACEMENT_RESOURCES = ("disk", "memory", "none")
FIELDS = ("min_ready_percent", "missed_polls", "poll_interval_s", "placement_resource", "node_apt_source")


def apt_source(value: object, field: str = "node_apt_source") -> str:
    """Empty, or one `deb` line (deb [options] URI suite [components]) with no shell or config syntax."""
    value = v.text("" if value is None else value, field, max_length=512).strip()
    if not value:
        return ""
    parts = value.split()
    if parts[0] != "deb" or len(parts) < 3:
        raise v.ValidationError(field, "must be one line like: deb http://mirror.example/debian bookworm main")
    bad = sorted(set(value) & (set("\"'`\\;{}<>$|&") | {"\t"}))
    if bad:
        raise v.ValidationError(field, f"must not contain {' '.join(bad)}")
    uri = next((p for p in parts[1:] if not p.startswith("[")), "")
    if not uri.startswith(("http://", "https://", "file:/", "cdrom:")):
        raise v.ValidationError(field, "the repository URI must start with http://, https:// or file:/")
    return " ".join(parts)


CHECKS = {
    "min_ready_percent": lambda value: v.integer(value, "min_ready_percent", 0, 100),
    "missed_polls": lambda value: v.integer(value, "missed_polls", 1, 100),
    "poll_interval_s": lambda value: v.integer(value, "poll_interval_s", 1, 3600),
    "placement_resource": lambda value: v.choice(value, "placement_resource", PLACEMENT_RESOURCES),
    "node_apt_source": apt_source,
}


def clean_policy(data: dict) -> dict:
    """Every given value checked (ValidationError names the first bad field); unknown fields refused."""
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise v.ValidationError(unknown[0], "unknown field")
    return {key: CHECKS[key](data[key]) for key in FIELDS if key in data}


def update_policy(data: dict) -> Policy:
    """Store the given values when all of them are valid."""
    clean = clean_policy(data)
    policy = get_policy()
    for key, value in clean.items():
        setattr(policy, key, value)
    db.session.commit()
    return policy


def policy_to_dict(policy: Policy) -> dict:
    """The policies as the API shows them."""
    return {key: getattr(policy, key) for key in FIELDS}
