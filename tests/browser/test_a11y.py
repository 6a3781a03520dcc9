"""In a real browser, at 1366 and 390 px, as the administrator and as a customer: every page of the menu fits
the screen, starts with a skip link, and axe-core finds no serious or critical problem on it; deleting a
firewall row or a zone asks first and says what goes with it, with JavaScript and without."""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

import pytest
import requests

from tests.browser.conftest import browser, log_in, panel, screenshot  # noqa: F401  (fixtures)
from tests.conftest import ROOT
from tests.panel import add_loopback_nodes

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PASSWORD = "an accessible password"
CUSTOMER = "a11yuser"
ZONE = "a11y-shop.example"
WIDTHS = {"desktop": (1366, 900), "phone": (390, 844)}
AXE_VERSION = re.sub(r"#.*", "", (ROOT / "tests/browser/axe-core.version").read_text()).strip()
AXE_CACHE = Path(os.environ.get("AXE_CORE_CACHE", "/var/cache/hostfleet-lab/axe-core"))
AXE_SCRIPT = AXE_CACHE / AXE_VERSION / "node_modules/axe-core/axe.min.js"


@pytest.fixture(scope="module")
def nodes(panel, tmp_path_factory):  # noqa: F811
    """One loopback agent (a1) beside the panel's own server, and a customer holding a zone with a web domain
    and a mail domain in it."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        agents = add_loopback_nodes(panel, tmp_path_factory.mktemp("a11y-agents"), ("a1",), monkeypatch)
        admin = ("admin", panel.password)
        made = requests.post(panel.url + "/api/v1/users", auth=admin, timeout=30,
                             json={"name": CUSTOMER, "password": PASSWORD, "roles": ["web", "dns", "mail"]})
        assert made.status_code == 201, made.text
        customer = (CUSTOMER, PASSWORD)
        for path, body in (("/api/v1/domains", {"name": ZONE, "ip": "192.0.2.10"}),
                           ("/api/v1/webdomains", {"name": ZONE}), ("/api/v1/maildomains", {"name": ZONE})):
            created = requests.post(panel.url + path, auth=customer, json=body, timeout=60)
            assert created.status_code == 201, (path, created.text)
        yield agents
        agents.stop_all()


@pytest.fixture
def context_for(browser):  # noqa: F811
    """Browser contexts at a width (and with or without JavaScript), closed after the test."""
    made = []

    def new(width: str, javascript: bool = True):
        w, h = WIDTHS[width]
        context = browser.new_context(viewport={"width": w, "height": h}, java_script_enabled=javascript)
        made.append(context)
        page = context.new_page()
        page.js_errors = []
        page.on("pageerror", lambda error: page.js_errors.append(str(error)))
        return page

    yield new
    for context in made:
        context.close()


def menu_pages(page) -> list[str]:
    """Every page the sidebar links to, for the logged-in user."""
    return page.eval_on_selector_all(".sidebar a.menu-item", "links => links.map(a => a.getAttribute('href'))")


def overflow(page) -> int:
    """How many pixels the page is wider than the viewport (0 when it fits)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def sticking_out(page) -> list[str]:
    """The elements whose right edge is past the viewport's, as tag#id.class (for a failure's message)."""
    return page.evaluate("""() => {
      const clipped = e => { for (let p = e.parentElement; p && p !== document.body; p = p.parentElement) {
        if (getComputedStyle(p).overflowX !== 'visible') return true; } return false; };
      return [...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5 && !clipped(e))
        .slice(0, 8).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
                         (typeof e.className === 'string' && e.className ? '.' + e.className.split(' ').join('.') : '')
                         +
                         ' ' + Math.round(e.getBoundingClientRect().right)); }""")


@contextlib.contextmanager
def settled(page):
    """Waits, after the block, until HTMX has swapped and settled the response of what the block did: HTMX
    pushes the new address before it swaps, so the address alone says nothing about the page's content."""
    page.evaluate("""() => { window.hxSettled = false;
        document.body.addEventListener('htmx:afterSettle', () => { window.hxSettled = true; }, {once: true}); }""")
    yield
    page.wait_for_function("() => window.hxSettled === true", timeout=15_000)


def axe_problems(page) -> list[str]:
    """axe-core's serious and critical violations on the page, one line each."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        # Evaluated through the DevTools protocol: the page's CSP (no inline scripts) does not apply.
        page.evaluate(AXE_SCRIPT.read_text())
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['id']} ({v['impact']}): {v['help']} — " + "; ".join(n["target"][0] for n in v["nodes"][:4])
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


def accessible_names(page) -> list[str]:
    """The names of the page's controls as chromium gives them to a screen reader."""
    cdp = page.context.new_cdp_session(page)
    try:
        tree = cdp.send("Accessibility.getFullAXTree")["nodes"]
    finally:
        cdp.detach()
    return [node["name"]["value"] for node in tree
            if node.get("name", {}).get("value") and node.get("role", {}).get("value") in
            ("button", "DisclosureTriangle", "link")]


def visited_pages(page, panel, extra: tuple[str, ...]) -> list[str]:  # noqa: F811
    return list(dict.fromkeys(menu_pages(page) + list(extra)))


def zone_page(panel, who) -> str:  # noqa: F811
    zones = requests.get(panel.url + "/api/v1/domains", auth=who, timeout=60).json()
    zone_id = next(z["id"] for z in zones["items"] if z["name"] == ZONE)
    return f"/domains/names/{zone_id}"


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("who", ["admin", "customer"])
def test_every_menu_page_fits_and_starts_with_a_skip_link(context_for, panel, nodes, who, width):  # noqa: F811
    """No page is wider than the screen; the first Tab lands on the skip link, which moves focus to the main
    content; a phone's menu is folded behind its button."""
    page = context_for(width)
    name, password = ("admin", panel.password) if who == "admin" else (CUSTOMER, PASSWORD)
    log_in(page, panel, name, password)
    pages = visited_pages(page, panel, (zone_page(panel, (name, password)), "/account/tokens"))
    assert len(pages) >= 4, pages
    too_wide = {}
    for path in pages:
        page.goto(panel.url + path)
        if overflow(page) > 0:
            too_wide[path] = (overflow(page), sticking_out(page))
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "skip-link", path
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "content", path
        sidebar = page.locator("nav.sidebar")
        if width == "phone":
            assert not sidebar.is_visible(), path
            page.click(".menu-toggle")
            assert sidebar.is_visible() and page.get_attribute(".menu-toggle", "aria-expanded") == "true", path
            assert overflow(page) <= 0, (path, sticking_out(page))
        else:
            assert sidebar.is_visible() and not page.locator(".menu-toggle").is_visible(), path
        screenshot(page, f"a11y-{who}-{width}-{path.strip('/').replace('/', '-') or 'home'}")
    assert too_wide == {}, f"pages wider than the {width} viewport (px too wide): {too_wide}"
    assert page.js_errors == []


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("who", ["admin", "customer"])
def test_axe_finds_no_serious_problem(context_for, panel, nodes, who, width):  # noqa: F811
    """axe-core (npm, installed by scripts/install-axe-core.sh) on every menu page and a zone's page."""
    if not AXE_SCRIPT.is_file():
        pytest.skip(f"axe-core {AXE_VERSION} is not installed at {AXE_SCRIPT} (scripts/install-axe-core.sh "
                    "installs it from npm; it said why it could not)")
    page = context_for(width)
    name, password = ("admin", panel.password) if who == "admin" else (CUSTOMER, PASSWORD)
    page.goto(panel.url + "/login")
    found = {"/login": axe_problems(page)}
    log_in(page, panel, name, password)
    for path in visited_pages(page, panel, (zone_page(panel, (name, password)), "/account/tokens")):
        page.goto(panel.url + path)
        found[path] = axe_problems(page)
    found = {path: problems for path, problems in found.items() if problems}
    assert found == {}, found


def test_deleting_a_firewall_row_asks_first(context_for, panel, nodes):  # noqa: F811
    """The row's Delete names its row; it opens a question that says the rule goes from every node; Cancel
    and Escape keep the row; the question's button deletes it."""
    page = context_for("phone")
    log_in(page, panel, "admin", panel.password)
    page.goto(panel.url + "/system/firewall")
    hint = page.get_attribute("#list-form input[name=ports]", "aria-describedby")
    assert hint and page.inner_text(f"#{hint}") == "22,80,1000-2000; empty: all ports", "the hint is tied to its field"
    page.fill("#list-form input[name=ports]", "8443")
    page.fill("#list-form input[name=comment]", "asks first")
    page.click("#list-form button[type=submit]")
    page.wait_for_url("**/operations/*")
    page.goto(panel.url + "/system/firewall")
    row = page.locator("#list-rows tbody tr", has_text="asks first")
    row_id = row.locator("td").first.inner_text()
    assert f"Delete rule {row_id}" in accessible_names(page), "the row's button is named with its row"
    assert "Delete" not in accessible_names(page), "no button is named only Delete"
    delete = page.locator(f"#row-{row_id} summary")
    delete.click()
    question = row.locator(".confirm-box")
    assert question.is_visible()
    assert f"Delete rule {row_id}? It is removed from every node." in question.inner_text()
    assert overflow(page) <= 0, sticking_out(page)
    screenshot(page, "a11y-firewall-delete-question")
    focused = page.evaluate("document.activeElement.textContent")
    assert focused == f"Delete rule {row_id}", "the question's own button takes the focus"
    question.get_by_role("button", name="Cancel").click()
    assert not question.is_visible() and row.count() == 1
    delete.click()
    page.keyboard.press("Escape")
    assert not question.is_visible() and row.count() == 1
    page.goto(panel.url + "/system/firewall")  # nothing was sent: the rule is still there
    assert page.locator("#list-rows tbody tr", has_text="asks first").count() == 1
    delete.click()
    with page.expect_navigation():
        page.locator(f"#row-{row_id} .confirm-box button[type=submit]").click()
    page.wait_for_url("**/operations/*")
    page.wait_for_function("() => !document.querySelector('#operation-detail').hasAttribute('hx-trigger')",
                           timeout=30_000)
    # The operation's progress is read out from the live region as its page refreshes itself.
    live = page.inner_text("#live-status")
    assert live.startswith("Operation ") and live.endswith(page.inner_text("#operation-detail h1 .badge")), live
    page.goto(panel.url + "/system/firewall")
    assert page.locator("#list-rows tbody tr", has_text="asks first").count() == 0
    page.fill("#list-form input[name=ports]", "not a port")
    page.click("#list-form button[type=submit]")
    described = page.get_attribute("#list-form input[name=ports]", "aria-describedby").split()
    assert len(described) == 2 and page.get_attribute("#list-form input[name=ports]", "aria-invalid") == "true"
    error = page.inner_text(f"#{described[1]}")
    assert error.startswith("Ports:"), error
    assert page.js_errors == []


def test_deleting_a_zone_without_javascript_says_what_depends_on_it(context_for, panel, nodes):  # noqa: F811
    """With JavaScript off, the zone's Delete still opens the question, which names the web domain and the
    mail domain it serves; nothing is deleted until its button is pressed (not pressed here)."""
    page = context_for("desktop", javascript=False)
    log_in(page, panel, CUSTOMER, PASSWORD)
    page.goto(panel.url + "/domains/names")
    row = page.locator("#zones-table tr", has_text=ZONE)
    row.locator("summary", has_text="Delete").click()
    text = row.locator(".confirm-box").inner_text()
    assert f"Delete domain name {ZONE}?" in text
    assert f"the mail domain {ZONE}" in text and f"the web domain {ZONE}" in text, text
    assert row.locator(".confirm-box button[type=submit]").inner_text() == f"Delete domain name {ZONE}"
    page.goto(panel.url + "/domains/names")
    assert page.locator("#zones-table tr", has_text=ZONE).count() == 1


def test_a_list_is_paged_sorted_and_searched_in_place_and_without_javascript(context_for, panel, nodes):  # noqa: F811
    """A customer's zones: natural order (a11y-2 before a11y-10), a pager that is a named nav with the
    count, HTMX swapping the list and pushing its address (no page load), labelled controls axe accepts;
    with JavaScript off the same search is a plain GET form."""
    customer = (CUSTOMER, PASSWORD)
    for name in ("a11y-10.example", "a11y-2.example"):
        made = requests.post(panel.url + "/api/v1/domains", auth=customer, json={"name": name, "ip": "192.0.2.10"},
                             timeout=60)
        assert made.status_code in (201, 409), made.text
    page = context_for("desktop")
    log_in(page, panel, CUSTOMER, PASSWORD)
    page.goto(panel.url + "/domains/names?per_page=2")
    names = page.locator("#zones-table tbody tr td:nth-child(2)")
    assert names.all_inner_texts() == ["a11y-2.example", "a11y-10.example"]
    pager = page.get_by_role("navigation", name="Pages of domain names")
    assert pager.locator(".count").inner_text() == "Showing 1–2 of 3 (page 1 of 2)"
    page.evaluate("window.stayed = true")
    with settled(page):
        pager.get_by_role("link", name="next ›").click()
    page.wait_for_url("**/domains/names?*page=2*")
    assert names.all_inner_texts() == [ZONE] and page.evaluate("window.stayed === true"), "swapped, not loaded"
    page.get_by_role("searchbox", name="Search domain names").fill("a11y-1")
    page.wait_for_url("**q=a11y-1*")
    page.wait_for_function("() => document.querySelectorAll('#zones-table tbody tr').length === 1")
    assert names.all_inner_texts() == ["a11y-10.example"]
    assert page.evaluate("document.activeElement.name") == "q", "typing keeps the focus in the search box"
    with settled(page):
        page.get_by_role("link", name="Name, sort descending").click()
    page.wait_for_url("**dir=desc*")
    if AXE_SCRIPT.is_file():
        assert axe_problems(page) == []
    page.go_back()
    page.wait_for_function("() => !location.search.includes('dir=desc')")
    assert page.js_errors == []

    plain = context_for("phone", javascript=False)
    log_in(plain, panel, CUSTOMER, PASSWORD)
    plain.goto(panel.url + "/domains/names")
    plain.get_by_role("searchbox", name="Search domain names").fill("shop")
    plain.get_by_role("button", name="Search").click()
    plain.wait_for_url("**/domains/names?q=shop*")
    assert plain.locator("#zones-table tbody tr td:nth-child(2)").all_inner_texts() == [ZONE]
    assert overflow(plain) <= 0, sticking_out(plain)
