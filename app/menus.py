"""The sidebar, mirroring ISPmanager's menus (SPEC §8)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MenuItem:
    """One sidebar entry: its label, endpoint and who sees it."""

    label: str
    slug: str
    endpoint: str
    admin_only: bool = False


@dataclass(frozen=True)
class MenuSection:
    """A sidebar group."""

    label: str
    items: tuple[MenuItem, ...]


MENU = (
    MenuSection("Accounts", (
        MenuItem("Users", "users", endpoint="accounts.users_index", admin_only=True),
        MenuItem("Plans", "plans", endpoint="plans.index", admin_only=True),
    )),
    MenuSection("Domains", (
        MenuItem("Web domains", "webdomains", endpoint="domains.webdomains"),
        MenuItem("Domain names", "domains", endpoint="domains.zones"),
    )),
    MenuSection("Mail", (
        MenuItem("Mail domains", "maildomains", endpoint="mail.domains"),
        MenuItem("Mailboxes", "mailboxes", endpoint="mail.mailboxes"),
        MenuItem("Whitelist", "mail-whitelist", endpoint="mail_lists.whitelist", admin_only=True),
        MenuItem("Blacklist", "mail-blacklist", endpoint="mail_lists.blacklist", admin_only=True),
    )),
    MenuSection("System", (
        MenuItem("Firewall", "firewall", endpoint="system.firewall", admin_only=True),
        MenuItem("Scheduler", "scheduler", endpoint="system.scheduler", admin_only=True),
    )),
    MenuSection("Cluster", (
        MenuItem("Nodes", "nodes", endpoint="cluster.nodes", admin_only=True),
        MenuItem("Policies", "policies", endpoint="system.policies", admin_only=True),
        MenuItem("Synchronization", "sync", endpoint="cluster.sync", admin_only=True),
    )),
    MenuSection("Operations", (
        MenuItem("Operations", "operations", endpoint="operations.index"),
    )),
)

def menu_for(user) -> list[MenuSection]:
    """The sections and items this user may see."""
    sections = []
    for section in MENU:
        items = tuple(i for i in section.items if user.is_admin or not i.admin_only)
        if items:
            sections.append(MenuSection(section.label, items))
    return sections
