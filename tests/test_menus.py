"""The sidebar mirrors ISPmanager's menus; users see only their menus."""

import re

import pytest

from app.menus import MENU

ADMIN_PAGES = ["/cluster/nodes", "/cluster/sync", "/system/firewall", "/accounts/users"]


def test_admin_sees_every_menu(client, auth):
    auth.login("root", admin=True)
    page = client.get("/cluster/nodes").text
    for section in MENU:
        assert re.search(rf'<div class="menu-title"[^>]*>{re.escape(section.label)}</div>', page), section.label
        for item in section.items:
            assert f">{item.label}</a>" in page


def test_user_sees_only_user_menus(client, auth):
    auth.login("bob", admin=False)
    page = client.get("/operations/").text
    assert ">Web domains</a>" in page and ">Mailboxes</a>" in page
    for hidden in (">Nodes</a>", ">Firewall</a>", ">Users</a>", ">Whitelist</a>"):
        assert hidden not in page


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_admin_pages_refuse_users(client, auth, path):
    auth.login("bob", admin=False)
    assert client.get(path).status_code in (403, 404)


@pytest.mark.parametrize("path", ADMIN_PAGES + ["/operations/", "/account/tokens", "/"])
def test_pages_need_login(client, path):
    response = client.get(path)
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_every_menu_item_opens(client, auth):
    auth.login("root", admin=True)
    page = client.get("/cluster/nodes").text
    for link in __import__("re").findall(r'class="menu-item[^"]*" href="([^"]+)"', page):
        assert client.get(link).status_code == 200, link
