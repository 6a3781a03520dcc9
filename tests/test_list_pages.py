"""Every list page searches, filters, sorts naturally and pages the same way (app/listing.py), with
JavaScript (HTMX swaps the list and pushes its address) and without (a GET form and plain links)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

ROWS = 120


def seed_index(model_name: str, label: str, name_of):
    """ROWS index rows of one kind of user data, item1…item120, every fourth owned by ann, the rest by bob."""
    def seed(app):
        from sqlalchemy import insert

        from app import models
        from app.extensions import db
        from app.models import UserLevel
        from app.services import accounts

        model = getattr(models, model_name)
        with app.app_context():
            ann = accounts.create_user("ann", "a password of ann", UserLevel.USER).id
            bob = accounts.create_user("bob", "a password of bob", UserLevel.USER).id
            node = seed_nodes_rows(1)[0]
            db.session.execute(insert(model), [
                {label: name_of(i), "owner_id": ann if i % 4 == 0 else bob, "node_id": node}
                for i in range(1, ROWS + 1)])
            db.session.commit()
    return seed


def seed_nodes_rows(count: int, state=lambda i: "ready") -> list[int]:
    from sqlalchemy import insert, select

    from app.extensions import db
    from app.models import Node

    db.session.execute(insert(Node), [
        {"name": f"item{i}" if count > 1 else "n1", "address": f"192.0.2.{i % 250}", "agent_port": 1,
         "roles": ["web", "dns", "mail"], "state": state(i), "agent_secret": "00" * 32,
         "cert_fingerprint": "00" * 32} for i in range(1, count + 1)])
    return list(db.session.scalars(select(Node.id).order_by(Node.id)))


def seed_nodes(app):
    from app.extensions import db

    with app.app_context():
        seed_nodes_rows(ROWS, state=lambda i: "ready" if i % 3 == 0 else "error")
        db.session.commit()


def seed_users(app):
    from sqlalchemy import insert, select

    from app.extensions import db
    from app.models import User

    with app.app_context():
        password_hash = db.session.scalar(select(User.password_hash).where(User.name == "root"))
        db.session.execute(insert(User), [{"name": f"item{i}", "password_hash": password_hash, "level": "user",
                                           "active": i % 4 != 0} for i in range(1, ROWS + 1)])
        db.session.commit()


def seed_operations(app):
    from sqlalchemy import insert

    from app.extensions import db
    from app.models import Operation
    from app.models.base import utcnow

    now = utcnow()
    with app.app_context():
        db.session.execute(insert(Operation), [
            {"kind": "check_node", "title": f"Check item{i}", "status": "failed" if i % 5 == 0 else "succeeded",
             "created_at": now - timedelta(minutes=ROWS - i), "finished_at": now, "message": "", "params": {},
             "log": ""} for i in range(1, ROWS + 1)])
        db.session.commit()


def seed_list(name: str, row_of):
    def seed(app):
        from app.extensions import db
        from app.services import lists

        with app.app_context():
            lists.get_list(name).rows = [{"id": i, **row_of(i)} for i in range(1, ROWS + 1)]
            db.session.commit()
    return seed


# (menu, list address, seed, the ?sort= that orders item1…item120, a filter and how many rows it leaves)
MENUS = [
    pytest.param(("/domains/web", seed_index("WebDomainIndex", "name", lambda i: f"item{i}.example"),
                 "", ("owner", "ann", 30)), id="webdomains"),
    pytest.param(("/domains/names", seed_index("DomainIndex", "name", lambda i: f"item{i}.example"),
                 "", ("owner", "ANN", 30)), id="domains"),
    pytest.param(("/mail/domains", seed_index("MailDomainIndex", "name", lambda i: f"item{i}.example"),
                 "", ("owner", "bob", 90)), id="maildomains"),
    pytest.param(("/mail/mailboxes", seed_index("MailboxIndex", "address", lambda i: f"box@item{i}.example"),
                 "", ("node", "n1", 120)), id="mailboxes"),
    pytest.param(("/accounts/users", seed_users, "", ("status", "suspended", 30)), id="users"),
    pytest.param(("/operations/", seed_operations, "sort=id&dir=asc", ("status", "failed", 24)), id="operations"),
    pytest.param(("/cluster/nodes", seed_nodes, "", ("state", "ready", 40)), id="nodes"),
    pytest.param(("/system/firewall", seed_list("firewall", lambda i: {
        "action": "allow", "protocol": "tcp", "ports": str(1000 + i), "source": "", "comment": f"item{i}"}),
        "", None), id="firewall"),
    pytest.param(("/system/scheduler", seed_list("scheduler", lambda i: {
        "schedule": "* * * * *", "user": "root", "command": "true", "comment": f"item{i}", "enabled": True}),
        "", None), id="scheduler"),
]


@pytest.fixture
def listed(app, client, auth, request):
    """An administrator logged in, and the menu's ROWS rows named item1…item120."""
    path, seed, order, filtered = request.param
    auth.login("root", admin=True)
    seed(app)

    def get(query: str = "", hx: bool = False):
        args = {}
        for part in (f"q=item&{order}&{query}").split("&"):
            if part:
                key, _, value = part.partition("=")
                args[key] = value  # a later value replaces the menu's own (dir=desc over dir=asc)
        joined = "&".join(f"{k}={v}" for k, v in args.items())
        answer = client.get(f"{path}?{joined}", headers={"HX-Request": "true"} if hx else {})
        assert answer.status_code == 200, answer.text[:500]
        return answer.text

    get.path, get.order, get.filtered, get.client = path, order, filtered, client
    return get


def names_in(html: str) -> list[str]:
    """The item names of the table's rows, in order."""
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    found: list[str] = []
    for name in re.findall(r"item\d+", body):
        if not found or found[-1] != name:
            found.append(name)
    return found


def count_of(html: str) -> str:
    return re.search(r'<p class="count"[^>]*>([^<]*)</p>', html).group(1)


def by_menu(with_filter: bool = False):
    menus = [m for m in MENUS if m.values[0][3] is not None] if with_filter else MENUS
    return pytest.mark.parametrize("listed", menus, indirect=True)


@by_menu()
def test_rows_are_sorted_naturally_and_paged_with_a_count(listed):
    """item2 comes before item10; 50 rows a page; the count says which rows of how many are shown."""
    first = listed()
    assert names_in(first) == [f"item{i}" for i in range(1, 51)]
    assert count_of(first).startswith("Showing 1–50 of 120")
    assert '<nav class="pager" aria-label="Pages of' in first
    second = listed("page=2")
    assert names_in(second) == [f"item{i}" for i in range(51, 101)]
    assert count_of(second).startswith("Showing 51–100 of 120")
    last = listed("per_page=100&page=2")
    assert names_in(last) == [f"item{i}" for i in range(101, 121)]
    assert count_of(last).startswith("Showing 101–120 of 120")
    beyond = listed("page=99")
    assert names_in(beyond) == [f"item{i}" for i in range(101, 121)], "a page past the end shows the last one"


@by_menu()
def test_a_column_sorts_both_ways_and_the_order_stays_in_the_links(listed):
    """Descending from its header link; the pager's links keep the order and the search."""
    if "sort=" in listed.order:
        descending = listed("dir=desc")
    else:
        first = listed()
        header = re.search(r'<th scope="col" aria-sort="ascending"><a href="([^"]+)"', first).group(1)
        assert "dir=desc" in header
        descending = listed("dir=desc&sort=" + re.search(r"sort=(\w+)", header).group(1))
        assert 'aria-sort="descending"' in descending
    assert names_in(descending)[:3] == ["item120", "item119", "item118"]
    next_link = re.search(r'<a rel="next" href="([^"]+)"', descending).group(1).replace("&amp;", "&")
    assert "q=item" in next_link and "page=2" in next_link
    followed = listed.client.get(next_link)
    assert names_in(followed.text)[:2] == ["item70", "item69"], next_link


@by_menu()
def test_the_search_matches_part_of_a_name_in_any_case(listed):
    found = listed("q=ITEM7")
    assert sorted(names_in(found)) == sorted(["item7", *(f"item{i}" for i in range(70, 80))])
    assert count_of(found).startswith("Showing 1–11 of 11")
    nothing = listed("q=no-such-thing")
    assert names_in(nothing) == [] and count_of(nothing) == "Nothing matches"
    assert "%" not in names_in(listed("q=%25")), "% is searched as itself"
    assert count_of(listed("q=%25")) == "Nothing matches"


@by_menu(with_filter=True)
def test_the_natural_filter_narrows_the_list(listed):
    name, value, expected = listed.filtered
    narrowed = listed(f"{name}={value}&per_page=200")
    assert count_of(narrowed).startswith(f"Showing 1–{expected} of {expected}")
    assert f'name="{name}"' in narrowed


@by_menu()
def test_without_javascript_the_controls_are_a_get_form_and_links(listed):
    """The whole page holds a GET form that submits the search (keeping the order) and plain links for
    headers and pages; bad query values fall back to the defaults instead of failing."""
    page = listed("per_page=20")
    assert "<html" in page
    form = re.search(r'<form method="get" action="([^"]+)" class="list-controls" role="search"', page)
    assert form and form.group(1) == listed.path.rstrip("?")
    assert re.search(r'<label for="[\w-]+-q">Search', page) and 'type="search"' in page
    assert '<option value="20" selected>' in page
    assert re.search(r'<a rel="next" href="[^"]*page=2[^"]*per_page=20', page.replace("&amp;", "&")) or \
        re.search(r'<a rel="next" href="[^"]*per_page=20[^"]*page=2', page.replace("&amp;", "&"))
    odd = listed("page=x&per_page=-3&sort=nonsense&dir=sideways")
    assert names_in(odd) == names_in(listed("sort=&dir=")) and len(names_in(odd)) == 50


@by_menu()
def test_with_htmx_the_list_region_is_swapped_and_its_address_pushed(listed):
    """An HTMX request answers the list's region alone; every control targets that region and pushes
    the address, so Back and a copied link show the same list."""
    fragment = listed("page=2", hx=True)
    assert "<html" not in fragment
    region = re.match(r'\s*<div id="([\w-]+)"', fragment).group(1)
    assert names_in(fragment)[0] == "item51"
    controls = re.findall(r'hx-get="[^"]*" hx-target="#([\w-]+)" hx-swap="outerHTML" hx-push-url="true"', fragment)
    assert controls and set(controls) == {region}
