"""The kinds of user data (web domains, domain names, mail domains, mailboxes, databases, database users)
and their fields."""

from __future__ import annotations

from dataclasses import dataclass

from app.models import DatabaseIndex, DbUserIndex, DomainIndex, MailboxIndex, MailDomainIndex, WebDomainIndex


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
    "databases": Kind("databases", "database", DatabaseIndex, "db", "/v1/databases", "name"),
    "dbusers": Kind("dbusers", "database user", DbUserIndex, "db", "/v1/dbusers", "name"),
}
CREATE_FIELDS = {
    "webdomains": ("name", "aliases", "owner", "php", "docroot", "php_settings", "dns", "override"),
    "domains": ("name", "owner", "ip", "nameservers", "records", "override"),
    "maildomains": ("name", "owner", "dns", "override"),
    "mailboxes": ("address", "password", "quota_mb", "forward"),
    "databases": ("name", "owner", "engine", "charset", "collation"),
    "dbusers": ("name", "owner", "password", "databases"),
}
UPDATE_FIELDS = {"webdomains": ("aliases", "php", "docroot", "php_settings", "override"),
                 "mailboxes": ("password", "quota_mb", "forward"), "dbusers": ("password", "databases")}
RECORD_FIELDS = ("name", "type", "value", "ttl", "priority")
# What a disk quota that is used up refuses: the kinds whose data takes disk space on the node.
DISK_KINDS = ("webdomains", "maildomains", "mailboxes")
# The kinds on a `db` node, named `<owner>_...` rather than by the name registry (docs/agent-ops.md, "Databases").
DB_KINDS = ("databases", "dbusers")


def key_of(row) -> str:
    """The name (or address) of an index row."""
    return row.address if isinstance(row, MailboxIndex) else row.name
