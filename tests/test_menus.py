"""The sidebar mirrors ISPmanager's menus; unbuilt menus say so; users see only their menus."""

import pytest

from app.menus import MENU, PLANNED

ADMIN_PAGES = ["/cluster/nodes", "/cluster/sync", "/menu/firewall", "/menu/users"]


def test_admin_sees_every_menu(client, auth):
    auth.login("root", admin=True)
    page = client.get("/cluster/nodes").text
    for section in MENU:
        assert f'<div class="menu-title">{section.label}</div>' in page
        for item in section.items:
            assert f">{item.label}</a>" in page


@pytest.mark.parametrize("slug", sorted(PLANNED))
def test_unbuilt_menu_says_so(client, auth, slug):
    auth.login("root", admin=True)
    response = client.get(f"/menu/{slug}")
    assert response.status_code == 200
    assert "This menu is not built yet." in response.text
    assert PLANNED[slug].planned in response.text


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


def test_unknown_menu_is_404_not_500(client, auth):
    auth.login("root", admin=True)
    assert client.get("/menu/nope").status_code == 404
