"""The billing life cycle through /ispmgr only, on a real Debian node (docs/ispmgr.md).

One lab node is added with web, dns and mail and reaches `ready`. A billing system then does through
/ispmgr alone, as its module would (form-encoded calls, `out=json` and `out=xml` in turn, the
administrator's API token as the authinfo password): create a customer on a preset with a first
site and mail domain, suspend, resume, change the preset, change the password, delete. Each step is
checked afterwards through /api/v1 and on the node (curl with the site's Host header, the node's files
and accounts). The tests run in order and share the one module-scoped cluster.
"""

from __future__ import annotations

import json
import re
import time
import xml.etree.ElementTree as ET

import pytest
import requests

from tests.cluster.labpanel import LabPanel, reset
from tests.userdata.test_lab_services import curl

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

LOGIN = "billcust"
PASSWORD = "first billing pass 1"
NEW_PASSWORD = "second billing pass 2"
DOMAIN = "billing-lab.test"
# What a customer with a site and a mail domain has on the node, and where their names are written.
THEIRS = (f"/home/{LOGIN}", f"/etc/nginx/hostfleet/{LOGIN}", f"/etc/php/8.2/fpm/pool.d/hostfleet-{LOGIN}.conf")
CONFIG_DIRS = "/etc/nginx /etc/php /etc/exim4 /etc/dovecot /etc/bind /var/lib/bind /var/cache/bind"
PLANS = {"Start": {"webdomains": 2, "maildomains": 2, "mailboxes": 5, "disk_mb": 500},
         "Pro": {"webdomains": 9, "maildomains": 8, "mailboxes": 50, "disk_mb": 4000}}


class Lifecycle:
    """The panel, the lab node and a billing client of /ispmgr."""

    def __init__(self, panel: LabPanel, node, node_id: int, token: str):
        self.panel = panel
        self.node = node
        self.node_id = node_id
        self.authinfo = f"admin:{token}"

    def ispmgr(self, func: str, out: str, **params):
        """POST one func form-encoded, as JBS and WHMCS do; the parsed doc (JSON dict or XML element)."""
        answer = requests.post(self.panel.url + "/ispmgr", timeout=300,
                               data={"func": func, "out": out, "authinfo": self.authinfo, **params})
        assert answer.status_code == 200, answer.text
        if out == "json":
            return json.loads(answer.text)["doc"]
        return ET.fromstring(answer.content)

    def ok(self, func: str, out: str, **params) -> None:
        """A change the billing module takes for a success: `ok` and no `error`."""
        doc = self.ispmgr(func, out, **params)
        if out == "json":
            assert "error" not in doc and "ok" in doc, doc
        else:
            assert doc.find("error") is None and doc.find("ok") is not None, ET.tostring(doc)

    def api(self, method: str, path: str, json=None) -> requests.Response:
        """/api/v1 as the administrator."""
        return self.panel.request(method, path, json)

    def customer(self) -> dict | None:
        """The customer as /api/v1/users shows them, None when there is none."""
        items = self.api("GET", "/api/v1/users?per_page=100").json()["items"]
        found = [u for u in items if u["name"] == LOGIN]
        return self.api("GET", f"/api/v1/users/{found[0]['id']}").json() if found else None

    def served(self, check, timeout: float = 30) -> tuple[int, str]:
        """curl the site on the node until check(status, body) holds (nginx reloads just after the answer)."""
        deadline = time.monotonic() + timeout
        while True:
            status, body = curl(self.node.address, DOMAIN)
            if check(status, body) or time.monotonic() > deadline:
                return status, body
            time.sleep(0.3)

    def on_node(self, command: str) -> str:
        """A shell command's output on the node."""
        return self.node.exec(command, check=False).stdout


@pytest.fixture(scope="module")
def life(lab_nodes, tmp_path_factory):
    """A fresh lab node added with web, dns and mail (ready) and the presets a hosting company sells."""
    from tests.lab.lab import Lab

    node = lab_nodes(1)[0]
    reset(node)
    panel = LabPanel(tmp_path_factory.mktemp("ispmgrlife"), Lab().repo_line).start()
    try:
        added = panel.add(node, "bill1", roles=["web", "dns", "mail"])
        assert added.status_code == 202, added.text
        node_id = added.json()["node"]["id"]
        panel.wait_state(node_id, "ready", timeout=900)
        # The presets are the hosting company's own set-up, made once in the panel, not by the billing module.
        for name, limits in PLANS.items():
            made = panel.request("POST", "/api/v1/plans", {"name": name, "limits": limits,
                                                           "roles": ["web", "dns", "mail"]})
            assert made.status_code == 201, made.text
        yield Lifecycle(panel, node, node_id, panel.token)
    finally:
        panel.stop()


def test_create_with_preset_and_first_domains(life):
    """user.add.finish (WHMCS's create) makes the customer on the preset, the site answers on the node (with
    PHP, its pool there) and the mail domain exists there."""
    life.ok("user.add.finish", "json", sok="ok", name=LOGIN, passwd=PASSWORD, preset="Start",
            fullname="Doe Jane", webdomain_name=DOMAIN, emaildomain_name=DOMAIN, ftp_user_name=LOGIN,
            ipsrc="do_not_assign", limit_cpu="100")
    listed = life.ispmgr("user", "xml", elid=LOGIN)
    elem = listed.find("elem")
    assert elem.findtext("name") == LOGIN and elem.findtext("preset") == "Start"
    assert elem.findtext("active") == "on" and elem.findtext("limit_webdomains") == "2"

    shown = life.customer()
    assert shown["plan"] == "Start" and shown["effective_limits"]["webdomains"] == 2
    # PHP on (as G6's site.edit asks): the customer's PHP-FPM pool on the node is theirs to lose too.
    life.ok("webdomain.edit", "xml", su=LOGIN, elid=DOMAIN, sok="ok", php="on")
    sites = life.ispmgr("webdomain", "json", su=LOGIN)["elem"]
    assert [(e["name"]["$"], e["owner"]["$"]) for e in sites] == [(DOMAIN, LOGIN)]
    mail = life.ispmgr("emaildomain", "xml", su=LOGIN)
    assert [e.findtext("name") for e in mail.findall("elem")] == [DOMAIN]

    status, body = life.served(lambda st, b: st == 200 and f"<h1>{DOMAIN}</h1>" in b)
    assert status == 200 and f"<h1>{DOMAIN}</h1>" in body, (status, body)
    assert life.on_node(f"getent passwd {LOGIN}").startswith(f"{LOGIN}:")
    assert DOMAIN in life.on_node("cat /etc/exim4/hostfleet/domains").split()
    assert sorted(life.on_node(f"ls -d {' '.join(THEIRS)} 2>/dev/null").split()) == sorted(THEIRS)
    mentions = life.on_node(f"grep -rl -e {DOMAIN} -e {LOGIN} {CONFIG_DIRS} 2>/dev/null").split()
    assert {"/etc/exim4/hostfleet/domains", f"/etc/bind/hostfleet/{DOMAIN}.zone"} <= set(mentions), mentions


def test_suspend_shows_the_suspended_page_and_resume_brings_the_site_back(life):
    """user.suspend (no sok, as WHMCS) → 503 "is suspended"; user.resume (sok=ok, as Blesta) → the site."""
    life.panel.wait_state(life.node_id, "ready", timeout=120)
    life.ok("user.suspend", "xml", elid=LOGIN)
    status, body = life.served(lambda st, b: st == 503)
    assert status == 503 and "is suspended" in body, (status, body)
    assert life.customer()["active"] is False
    assert life.ispmgr("user", "json", elid=LOGIN)["elem"][0]["active"]["$"] == "off"

    life.panel.wait_state(life.node_id, "ready", timeout=120)
    life.ok("user.resume", "json", elid=LOGIN, sok="ok")
    status, body = life.served(lambda st, b: st == 200 and f"<h1>{DOMAIN}</h1>" in b)
    assert status == 200 and f"<h1>{DOMAIN}</h1>" in body, (status, body)
    assert life.customer()["active"] is True


def test_change_preset_limits_follow(life):
    """user.edit with another preset (Blesta's change of package): the effective limits are the new plan's."""
    life.ok("user.edit", "xml", sok="ok", elid=LOGIN, preset="Pro", webdomain_name=DOMAIN)
    shown = life.customer()
    assert shown["plan"] == "Pro"
    assert {k: shown["effective_limits"][k] for k in PLANS["Pro"]} == PLANS["Pro"]
    form = life.ispmgr("preset.edit", "json", elid="Pro")
    assert form["limit_webdomains"]["$"] == "9"
    assert life.ispmgr("user", "json", elid=LOGIN)["elem"][0]["limit_emails"]["$"] == "50"


def panel_login(life, password: str) -> int:
    """The panel's login form with the customer's name and a password: 302 logged in, 400 refused."""
    session = requests.Session()
    page = session.get(life.panel.url + "/login", timeout=60)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)
    return session.post(life.panel.url + "/login", allow_redirects=False, timeout=60,
                        data={"username": LOGIN, "password": password, "csrf_token": token}).status_code


def test_password_change_panel_takes_the_new_refuses_the_old(life):
    """usrparam with su= (WHMCS's change of password, no confirm): the new password logs in, the old is refused."""
    assert panel_login(life, PASSWORD) == 302
    life.ok("usrparam", "json", su=LOGIN, passwd=NEW_PASSWORD, sok="ok")
    assert panel_login(life, NEW_PASSWORD) == 302
    assert panel_login(life, PASSWORD) == 400
    basic = requests.get(life.panel.url + "/api/v1/webdomains", auth=(LOGIN, NEW_PASSWORD), timeout=60)
    assert basic.status_code == 200 and [w["name"] for w in basic.json()["items"]] == [DOMAIN]


def test_delete_leaves_nothing_on_the_node(life):
    """user.delete: the customer, their site, pool, mail domain, zone, home and OS account are gone."""
    life.panel.wait_state(life.node_id, "ready", timeout=120)
    life.ok("user.delete", "xml", elid=LOGIN)
    assert life.customer() is None
    for kind in ("webdomains", "maildomains", "domains"):
        items = life.api("GET", f"/api/v1/{kind}?per_page=100").json()["items"]
        assert [i for i in items if i.get("owner") == LOGIN] == [], (kind, items)
    gone = life.ispmgr("user.edit", "json", elid=LOGIN)["error"]
    assert gone["$type"] == "value" and gone["$object"] == "elid"

    for database in ("passwd", "group", "shadow"):
        assert life.node.exec(f"getent {database} {LOGIN}", check=False).returncode != 0, database
    left = life.on_node(f"ls -d {' '.join(THEIRS)} /etc/nginx/hostfleet/{LOGIN}* /var/mail/hostfleet/{DOMAIN} "
                        "2>/dev/null")
    assert left == "", left
    mentions = life.on_node(f"grep -rl -e {DOMAIN} -e {LOGIN} {CONFIG_DIRS} 2>/dev/null")
    assert mentions == "", mentions
    status, body = curl(life.node.address, DOMAIN)
    assert status in (0, 444) or (status == 404 and DOMAIN not in body), (status, body)
