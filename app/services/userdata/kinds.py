"""The four kinds of user data (web domains, domain names, mail domains, mailboxes) and their fields."""

from __future__ import annotations

from dataclasses import dataclass

from app.models import DomainIndex, MailboxIndex, MailDomainIndex, WebDomainIndex


@dataclass(frozen=True)
class Kind:
    """One kind of user data: its name (also its limit's name), label, index model, role, agent path, key."""

    name: str
    label: str
    model: type
    role: str
    path: str
    key: str

    @property
    def plural(self) -> str:
        return self.label + ("es" if self.label.endswith("x") else "s")


KINDS = {
    "webdomains": Kind("webdomains", "web domain", WebDomainIndex, "web", "/v1/webdomains", "name"),
    "domains": Kind("domains", "domain name", DomainIndex, "dns", "/v1/domains", "name"),
    "maildomains": Kind("maildomains", "mail domain", MailDomainIndex, "mail", "/v1/maildomains", "name"),
    "mailboxes": Kind("mailboxes", "mailbox", MailboxIndex, "mail", "/v1/mailboxes", "address"),
}
CREATE_FIELDS = {
    "webdomains": ("name", "aliases", "owner", "php", "docroot", "dns", "override"),
    "domains": ("name", "owner", "ip", "nameservers", "records", "override"),
    "maildomains": ("name", "owner", "dns", "override"),
    "mailboxes": ("address", "password", "quota_mb", "forward"),
}
UPDATE_FIELDS = {"webdomains": ("aliases", "php", "docroot", "override"),
                 "mailboxes": ("password", "quota_mb", "forward")}
RECORD_FIELDS = ("name", "type", "value", "ttl", "priority")
# What a disk quota that is used up refuses: the kinds whose data takes disk space on the node.
DISK_KINDS = ("webdomains", "maildomains", "mailboxes")


def key_of(row) -> str:
    """The name (or address) of an index row."""
    return row.address if isinstance(row, MailboxIndex) else row.name
