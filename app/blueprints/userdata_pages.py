"""What the user-data menus (Web domains, Domain names, Mail domains, Mailboxes) share: the paged list
from the index, the owner fields of a create form, and the note on a create's DNS records."""

from __future__ import annotations

from flask import flash, redirect, request
from flask_login import current_user
from wtforms import BooleanField, StringField

from app.errors import refused
from app.services import userdata
from app.services.errors import ServiceError

PER_PAGE = 100
# The API's highest ?page= too: beyond it the offset would overflow the database's integers (a 500).
MAX_PAGE = 1_000_000


def words(text: str | None) -> list[str]:
    """A list typed as "a.com, b.com" or one per line."""
    return [w for w in (text or "").replace(",", " ").split() if w]


class OwnerMixin:
    """Administrators name the owner; users always create for themselves (the field is ignored)."""

    owner = StringField("Owner (user name)")
    override = BooleanField("Override the name rules (another owner's name, a host name of the panel; recorded)")

    def owner_fields(self, data: dict, admin: bool) -> dict:
        """The owner and the override, which only administrators send."""
        if admin:
            data["owner"] = self.owner.data or ""
            if self.override.data:
                data["override"] = True
        return data


def page_number() -> int:
    """The ?page= of a list (1 when absent or not a number; at most MAX_PAGE)."""
    return min(max(request.args.get("page", 1, type=int) or 1, 1), MAX_PAGE)


def listing(kind: str) -> dict:
    """One page of the caller's index rows of kind, for a list template."""
    page = page_number()
    rows, total = userdata.list_index(kind, current_user, page, PER_PAGE)
    return {"rows": rows, "total": total, "page_no": page, "pages": max((total + PER_PAGE - 1) // PER_PAGE, 1)}


def dns_note(created: dict) -> str:
    """What the DNS part of a create did, for the flash message."""
    dns = created.get("dns")
    if not dns:
        return ""
    if "error" in dns or "skipped" in dns:
        return f" DNS records were not made: {dns.get('error') or dns.get('skipped')}"
    where = f"new zone {dns['zone']}" if dns["created_zone"] else f"zone {dns['zone']}"
    return f" DNS: {dns['records']} records in {where}."


def delete(kind: str, item_id: int, done: str, back: str):
    """Remove one of the caller's items of kind from its node, then from the index; flash `done` and go
    to `back` (a refusal is flashed there too, or a 404 for an item that is not the caller's)."""
    try:
        userdata.delete(kind, current_user, item_id)
    except ServiceError as exc:
        return refused(exc, back=back)
    flash(done)
    return redirect(back)
