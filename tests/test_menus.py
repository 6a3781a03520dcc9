"""The sidebar mirrors ISPmanager's menus; users see only their menus."""

import re
from pathlib import Path

import pytest

from app.menus import MENU, blueprint_name

ADMIN_PAGES = ["/dashboard", "/cluster/nodes", "/cluster/sync", "/system/firewall", "/accounts/users"]


def test_admin_sees_every_menu_but_the_customers_own(client, auth):
    auth.login("root", admin=True)
    page = client.get("/cluster/nodes").text
    for section in MENU:
        assert re.search(rf'<div class="menu-title"[^>]*>{re.escape(section.label)}</div>', page), section.label
        for item in section.items:
            assert (f">{item.label}</a>" in page) != item.customer_only, item.label


def test_user_sees_only_user_menus(client, auth):
    auth.login("bob", admin=False)
    page = client.get("/operations/").text
    assert ">Web domains</a>" in page and ">Mailboxes</a>" in page and ">Home</a>" in page
    for hidden in (">Dashboard</a>", ">Nodes</a>", ">Firewall</a>", ">Users</a>", ">Whitelist</a>"):
        assert hidden not in page


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_admin_pages_refuse_users(client, auth, path):
    auth.login("bob", admin=False)
    assert client.get(path).status_code in (403, 404)


@pytest.mark.parametrize("path", ADMIN_PAGES + ["/operations/", "/account/tokens", "/account", "/home", "/"])
def test_pages_need_login(client, path):
    response = client.get(path)
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_every_menu_item_opens(client, auth):
    auth.login("root", admin=True)
    page = client.get("/cluster/nodes").text
    for link in __import__("re").findall(r'class="menu-item[^"]*" href="([^"]+)"', page):
        assert client.get(link).status_code == 200, link


def test_pages_are_for_admins(client, auth):
    """A user gets 403 on every page of the system-wide lists and the policies."""
    auth.login("bob", admin=False)
    for path in ("/system/firewall", "/system/scheduler", "/mail/whitelist", "/mail/blacklist", "/cluster/policies",
                 "/system/firewall/1/edit"):
        assert client.get(path).status_code == 403, path


ROOT = Path(__file__).resolve().parent.parent
# Menus whose pages post no form of their own (buttons with a CSRF token only).
NO_FORMS = {"sync", "operations", "dashboard", "home"}


@pytest.mark.parametrize("item", [i for s in MENU for i in s.items], ids=lambda i: i.slug)
def test_each_menu_is_one_blueprint_template_folder_and_test_folder(app, item):
    """A sidebar entry is served by the blueprint named like its slug, whose views.py defines or names every
    endpoint it serves; its templates and its page tests are in folders of the same name."""
    name = blueprint_name(item)
    assert item.endpoint.split(".")[0] == name
    package = ROOT / "app/blueprints" / name
    views = (package / "views.py").read_text()
    assert (package / "forms.py").exists() == (name not in NO_FORMS), name
    endpoints = {rule.endpoint.split(".", 1)[1] for rule in app.url_map.iter_rules()
                 if rule.endpoint.startswith(name + ".")}
    assert item.endpoint.split(".", 1)[1] in endpoints
    for endpoint in endpoints:
        assert f"def {endpoint}(" in views or f'"{endpoint}"' in views, (name, endpoint)
    assert any((ROOT / "app/templates" / name).glob("*.html")), name
    assert (ROOT / "tests" / name / "test_pages.py").exists(), name
