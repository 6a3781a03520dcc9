"""The sidebar, mirroring ISPmanager's menus.

Each entry is served by the blueprint named like its slug (`mail-whitelist` → `app/blueprints/mail_whitelist/`),
whose templates are in `app/templates/<name>/` and page tests in `tests/<name>/` (docs/layout.md)."""

from __future__ import annotations

from dataclasses import dataclass

from flask_login import current_user


@dataclass(frozen=True)
class MenuItem:
    """One sidebar entry: its label, endpoint and who sees it (everyone, administrators only, or hosting
    customers only)."""

    label: str
    slug: str
    endpoint: str
    admin_only: bool = False
    customer_only: bool = False


@dataclass(frozen=True)
class MenuSection:
    """A sidebar group."""

    label: str
    items: tuple[MenuItem, ...]


MENU = (
    MenuSection("Overview", (
        MenuItem("Dashboard", "dashboard", endpoint="dashboard.index", admin_only=True),
        MenuItem("Home", "home", endpoint="home.index", customer_only=True),
        MenuItem("My account", "account", endpoint="account.index"),
    )),
    MenuSection("Accounts", (
        MenuItem("Users", "users", endpoint="users.index", admin_only=True),
        MenuItem("Plans", "plans", endpoint="plans.index", admin_only=True),
    )),
    MenuSection("Domains", (
        MenuItem("Web domains", "webdomains", endpoint="webdomains.index"),
        MenuItem("SSL certificates", "certificates", endpoint="certificates.index"),
        MenuItem("Domain names", "domains", endpoint="domains.index"),
    )),
    MenuSection("Mail", (
        MenuItem("Mail domains", "maildomains", endpoint="maildomains.index"),
        MenuItem("Mailboxes", "mailboxes", endpoint="mailboxes.index"),
        MenuItem("Whitelist", "mail-whitelist", endpoint="mail_whitelist.index", admin_only=True),
        MenuItem("Blacklist", "mail-blacklist", endpoint="mail_blacklist.index", admin_only=True),
    )),
    MenuSection("Databases", (
        MenuItem("Databases", "databases", endpoint="databases.index"),
        MenuItem("Database users", "dbusers", endpoint="dbusers.index"),
    )),
    MenuSection("System", (
        MenuItem("Firewall", "firewall", endpoint="firewall.index", admin_only=True),
        MenuItem("Scheduler", "scheduler", endpoint="scheduler.index", admin_only=True),
    )),
    MenuSection("Cluster", (
        MenuItem("Nodes", "nodes", endpoint="nodes.index", admin_only=True),
        MenuItem("Policies", "policies", endpoint="policies.index", admin_only=True),
        MenuItem("Synchronization", "sync", endpoint="sync.index", admin_only=True),
    )),
    MenuSection("Operations", (
        MenuItem("Operations", "operations", endpoint="operations.index"),
    )),
)

def menu_for(user) -> list[MenuSection]:
    """The sections and items this user may see."""
    sections = []
    for section in MENU:
        items = tuple(i for i in section.items if (not i.admin_only and not i.customer_only)
                      or (i.admin_only if user.is_admin else i.customer_only))
        if items:
            sections.append(MenuSection(section.label, items))
    return sections


def blueprint_name(item: MenuItem) -> str:
    """The blueprint (and template and test folder) of a sidebar entry."""
    return item.slug.replace("-", "_")


def init_app(app) -> None:
    """Templates get `menu`, the sidebar the signed-in user may see. A context processor because
    base.html draws it on every page; it reads only the user already loaded for the request."""

    @app.context_processor
    def _menu():
        return {"menu": menu_for(current_user) if current_user.is_authenticated else []}
