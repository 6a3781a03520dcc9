"""Billing modules written for ISPmanager 5, replayed: for each module the contract file describes, the
requests it sends for create / suspend / resume / change password / change plan / terminate (method,
parameters, `out`, `sok`) and what the module concludes from each answer, checked afterwards through
/api/v1 and on the node."""

from __future__ import annotations

import json

from tests.conftest import Users
from tests.ispmgr.conftest import Billing
from tests.userdata.conftest import basic

NEW_PASSWORD = "changed by billing 1"


def api_user(client, name: str) -> dict | None:
    """The user as /api/v1 shows it to root, None when there is none."""
    found = [u for u in client.get("/api/v1/users", headers=basic("root")).json["items"] if u["name"] == name]
    return found[0] if found else None


def on_node(cluster, name: str) -> bool:
    """True when the node's passwd has the OS account."""
    node_id = next(iter(cluster.agent_nodes.agents))
    return f"\n{name}:" in "\n" + (cluster.root(node_id) / "etc/passwd").read_text()


def whmcs_ok(doc) -> str | None:
    """What ISPsystem's WHMCS module concludes from an XML answer: "type:msg" on error, else None."""
    error = doc.find("error")
    return None if error is None else f"{error.get('type')}:{error.findtext('msg')}"


def blesta_error(doc: dict) -> str | None:
    """Blesta reads only doc.error.detail.$: absent means success."""
    return ((doc.get("error") or {}).get("detail") or {}).get("$")


def jbs_ok(doc) -> bool:
    """JBS: success needs <ok/> and no <error>."""
    return doc.find("ok") is not None and doc.find("error") is None


def test_whmcs_module_life_cycle(app, client, billing, cluster):
    """WHMCS (POST, out=xml): preset check, user.add.finish without confirm and with fields Hostfleet ignores,
    the /doc/elem[level='16' and name=X] lookup, suspend, resume, usrparam as the user, change package,
    terminate."""
    billing.json("preset.edit", sok="ok", name="whmcs-basic", limit_webdomains="3", limit_quota="500")
    presets = billing.xml("preset", method="POST")
    assert "whmcs-basic" in [e.findtext("name") for e in presets.findall("elem")]
    form = billing.xml("preset.edit", method="POST", elid="whmcs-basic")
    limits = {child.tag: child.text or "" for child in form if child.tag.startswith("limit_")}
    assert limits["limit_webdomains"] == "3" and limits["limit_quota"] == "500"
    created = billing.xml("user.add.finish", method="POST", sok="ok", preset="whmcs-basic", name="wh1",
                          ftp_user_name="wh1", passwd="a long password", fullname="Doe John",
                          webdomain="off", emaildomain="off", ipsrc="do_not_assign", limit_cpu="100", **limits)
    assert whmcs_ok(created) is None
    listed = billing.xml("user", method="POST")
    assert [e for e in listed.findall("elem") if e.findtext("level") == "16" and e.findtext("name") == "wh1"]
    shown = api_user(client, "wh1")
    assert shown["plan"] == "whmcs-basic" and shown["effective_limits"]["webdomains"] == 3 and on_node(cluster, "wh1")
    assert whmcs_ok(billing.xml("user.suspend", method="POST", elid="wh1")) is None
    assert api_user(client, "wh1")["active"] is False
    assert whmcs_ok(billing.xml("user.resume", method="POST", elid="wh1")) is None
    assert api_user(client, "wh1")["active"] is True
    assert whmcs_ok(billing.xml("usrparam", method="POST", su="wh1", passwd=NEW_PASSWORD, sok="ok")) is None
    assert client.get(f"/api/v1/users/{shown['id']}", headers=basic("wh1", NEW_PASSWORD)).status_code == 200
    billing.json("preset.edit", sok="ok", name="whmcs-pro", limit_webdomains="10")
    changed = billing.xml("user.edit", method="POST", sok="ok", elid="wh1", preset="whmcs-pro", limit_webdomains="10")
    assert whmcs_ok(changed) is None
    assert api_user(client, "wh1")["plan"] == "whmcs-pro"
    assert api_user(client, "wh1")["effective_limits"]["webdomains"] == 10
    assert whmcs_ok(billing.xml("user.delete", method="POST", elid="wh1")) is None
    assert api_user(client, "wh1") is None and not on_node(cluster, "wh1")
    taken = billing.xml("user.add.finish", method="POST", sok="ok", name="root", passwd="a long password")
    assert whmcs_ok(taken).startswith("value:")  # an administrator's name: refused, the module shows why


def test_blesta_module_life_cycle(app, client, billing, cluster):
    """Blesta (GET, out=json, sok=ok on every call, reads only doc.error.detail.$)."""
    billing.json("preset.edit", sok="ok", name="bl-basic", limit_emails="5")
    users = billing.json("user", sok="ok")
    assert "bl1" not in [e["name"]["$"] for e in users.get("elem", [])]
    made = billing.json("user.add", sok="ok", name="bl1", fullname="Bl One", passwd="a long password",
                        confirm="a long password", webdomain_name="", emaildomain_name="", preset="bl-basic")
    assert blesta_error(made) is None
    again = billing.json("user.add", sok="ok", name="bl1", fullname="Bl One", passwd="a long password",
                         confirm="a long password", preset="bl-basic")
    assert "exists" in blesta_error(again) and again["error"]["$type"] == "exists"
    assert len(billing.json("user", sok="ok")["elem"]) == 1
    assert blesta_error(billing.json("user.suspend", sok="ok", elid="bl1")) is None
    assert api_user(client, "bl1")["active"] is False
    assert blesta_error(billing.json("user.resume", sok="ok", elid="bl1")) is None
    assert blesta_error(billing.json("user.edit", sok="ok", elid="bl1", passwd=NEW_PASSWORD,
                                     confirm=NEW_PASSWORD)) is None
    assert client.get("/api/v1/operations", headers=basic("bl1", NEW_PASSWORD)).status_code == 200
    mismatch = billing.json("user.edit", sok="ok", elid="bl1", passwd="another password", confirm="typo password")
    assert mismatch["error"]["$object"] == "confirm" and blesta_error(mismatch)
    billing.json("preset.edit", sok="ok", name="bl-pro", limit_emails="50")
    assert blesta_error(billing.json("user.edit", sok="ok", elid="bl1", preset="bl-pro")) is None
    assert api_user(client, "bl1")["effective_limits"]["mailboxes"] == 50
    assert blesta_error(billing.json("user.delete", sok="ok", elid="bl1")) is None
    assert api_user(client, "bl1") is None and not on_node(cluster, "bl1")


def test_fossbilling_module_logs_in_before_every_call(app, client, billing, cluster):
    """FOSSBilling (GET, out=json): func=auth before every call, doc.auth.$id passed as auth=; it concludes
    success from HTTP 200 and valid JSON."""
    billing.json("preset.edit", sok="ok", name="fb-plan", limit_webdomains="1")

    def call(func: str, **params) -> dict:
        login = billing.raw(func="auth", out="json", username="root", password=Users.PASSWORD)
        sid = json.loads(login.text)["doc"]["auth"]["$id"]
        answer = billing.raw(func=func, out="json", auth=sid, **params)
        return json.loads(answer.text)["doc"]

    assert "ok" in call("user.add", status="on", name="fb1", fullname="fb1@example.com", passwd="a long password",
                        confirm="a long password", preset="fb-plan", addinfo="off", owner="root", sok="ok")
    assert "ok" in call("user.suspend", elid="fb1", sok="ok")
    assert api_user(client, "fb1")["active"] is False
    assert "ok" in call("user.resume", elid="fb1", sok="ok")
    assert "ok" in call("user.edit", elid="fb1", passwd=NEW_PASSWORD, confirm=NEW_PASSWORD, sok="ok")
    call("preset.edit", sok="ok", name="fb-big", limit_webdomains="9")
    assert "ok" in call("user.edit", elid="fb1", preset="fb-big", sok="ok")
    assert api_user(client, "fb1")["effective_limits"] == {"webdomains": 9}
    assert "ok" in call("user.delete", elid="fb1", sok="ok")
    assert api_user(client, "fb1") is None


def test_jbs_module_checks_ok_and_license(app, client, billing, cluster):
    """JBS (POST, out=xml): license.info names Business; the user.edit view is its existence check (an error
    means "no such user"); create, suspend, resume, change plan, usrparam password, delete: every change needs
    <ok/>."""
    assert "Business" in billing.xml("license.info", method="POST").findtext("mgr")
    assert billing.xml("user.edit", method="POST", elid="jb1").find("error") is not None  # not there yet
    billing.json("preset.edit", sok="ok", name="jb-plan")
    made = billing.xml("user.add.finish", method="POST", sok="ok", name="jb1", fullname="jb1@example.com",
                       passwd="a long password", confirm="a long password", ip="192.0.2.10",
                       email="jb1@example.com", preset="jb-plan", limit_webdomains="4",
                       limit_webdomains_enabled="on", domain="jb1.example.com", mailrate="100")
    assert jbs_ok(made)
    view = billing.xml("user.edit", method="POST", elid="jb1")
    assert view.find("error") is None and view.findtext("name") == "jb1" and view.findtext("limit_webdomains") == "4"
    for func in ("user.suspend", "user.resume"):
        assert jbs_ok(billing.xml(func, method="POST", elid="jb1"))
    billing.json("preset.edit", sok="ok", name="jb-big")
    assert jbs_ok(billing.xml("user.edit", method="POST", elid="jb1", sok="ok", name="jb1", ip="192.0.2.10",
                              preset="jb-big", limit_webdomains="8", limit_webdomains_enabled="on", mailrate="100"))
    shown = api_user(client, "jb1")
    assert shown["plan"] == "jb-big" and shown["effective_limits"]["webdomains"] == 8
    assert jbs_ok(billing.xml("usrparam", method="POST", su="jb1", sok="ok", passwd=NEW_PASSWORD,
                              confirm=NEW_PASSWORD, email="jb1@example.com", atype="atany"))
    assert jbs_ok(billing.xml("user.delete", method="POST", elid="jb1"))
    assert api_user(client, "jb1") is None


def test_grant436_module_reads_the_user_row(app, client, billing, cluster):
    """grant436 (GET, out=json, ISPmanager 6): whoami as the connection test, user.edit create with limits, the
    user row by elid with active, limits and quota_total; suspend shows active off, resume on; the password and
    the limits change through user.edit; delete."""
    assert billing.json("whoami")["user"]["$name"] == "root"
    made = billing.json("user.edit", sok="ok", name="g61", passwd="a long password", confirm="a long password",
                        limit_ssl="on", limit_webdomains="2", limit_ftp_users="1", limit_db="1", limit_emails="3",
                        limit_quota="1024")
    assert "error" not in made and made["id"]["$"] == "g61"
    row = billing.json("user", elid="g61")["elem"][0]
    assert row["active"]["$"] == "on" and row["limit_webdomains"]["$"] == "2" and row["quota_total"]["$"] == "1024"
    assert row["limit_emails"]["$"] == "3"
    billing.json("user.suspend", elid="g61", sok="ok")
    assert billing.json("user", elid="g61")["elem"][0]["active"]["$"] == "off"
    assert "error" not in billing.json("user.resume", elid="g61", sok="ok")
    assert billing.json("user", elid="g61")["elem"][0]["active"]["$"] == "on"
    assert "error" not in billing.json("user.edit", sok="ok", elid="g61", passwd=NEW_PASSWORD, confirm=NEW_PASSWORD)
    assert Billing(billing.client, "g61", NEW_PASSWORD).json("whoami")["user"]["$name"] == "g61"
    changed = billing.json("user.edit", sok="ok", elid="g61", limit_webdomains="5", limit_emails="9", limit_db="2",
                           limit_ftp_users="2", limit_quota="2048")
    assert "error" not in changed
    row = billing.json("user", elid="g61")["elem"][0]
    assert row["limit_webdomains"]["$"] == "5" and row["limit_emails"]["$"] == "9" and row["quota_total"]["$"] == "2048"
    assert "ok" in billing.json("user.delete", elid="g61", sok="ok")
    assert "elem" not in billing.json("user", elid="g61")


def test_a_customer_cannot_reach_others_or_raise_their_limits(app, client, billing, cluster):
    """alice (level 16): no user or preset funcs, no su= to bob, no user.edit on herself; usrparam changes only
    her own password; wrong elids in a group operation change nothing."""
    cluster.user("alice")
    cluster.user("bob")
    alice = Billing(billing.client, "alice")
    assert alice.json("whoami")["user"] == {"$name": "alice", "$level": "16", "$": "alice"}
    for func in ("user", "preset", "user.suspend", "user.delete", "preset.edit", "session.newkey"):
        error = alice.json(func, elid="bob", sok="ok", name="x", username="bob", key="k" * 20)["error"]
        assert error["$type"] == "access", (func, error)
    raised = alice.json("user.edit", sok="ok", elid="alice", limit_webdomains="1000")["error"]
    assert raised["$type"] == "access"
    assert alice.json("usrparam", su="bob", sok="ok", passwd=NEW_PASSWORD)["error"]["$type"] == "access"
    assert client.get("/api/v1/operations", headers=basic("bob")).status_code == 200  # bob's password unchanged
    assert "ok" in alice.json("usrparam", su="alice", sok="ok", passwd=NEW_PASSWORD)
    assert Billing(billing.client, "alice", NEW_PASSWORD).json("whoami")["user"]["$name"] == "alice"
    assert billing.json("whoami", su="alice")["user"]["$name"] == "alice"  # an administrator may act as her
    assert billing.json("user", su="alice")["error"]["$type"] == "access"  # and then has only her rights
    partial = billing.json("user.suspend", elid="alice, nobody")["error"]
    assert partial["$type"] == "value" and partial["$object"] == "elid"
    assert api_user(client, "alice")["active"] is True  # nothing done when one key is wrong
    assert billing.json("user.suspend", elid="alice, bob")["ok"] == {}
    assert not api_user(client, "alice")["active"] and not api_user(client, "bob")["active"]


def test_bad_create_input_names_the_parameter_and_writes_nothing(app, client, billing):
    """Each refusal names the parameter as ISPmanager spells it; no user is made."""
    billing.json("preset.edit", sok="ok", name="p1", limit_webdomains="1")
    cases = {"name": {"name": "Bad Name"}, "passwd": {"passwd": "short"},
             "confirm": {"confirm": "something else"}, "preset": {"preset": "no-such-plan"},
             "limit_webdomains": {"limit_webdomains": "lots"}, "limit_quota": {"limit_quota": "-1"}}
    for param, bad in cases.items():
        params = {"sok": "ok", "name": "dave", "passwd": "a long password", "preset": "p1", **bad}
        error = billing.json("user.add", **params)["error"]
        assert error["$type"] == "value" and error["$object"] == param, (param, error)
        assert error["detail"]["$"]
    assert api_user(client, "dave") is None
    dup = billing.json("preset.edit", sok="ok", name="p1")["error"]
    assert dup["$type"] == "exists" and dup["$object"] == "preset"
    billing.json("user.add", sok="ok", name="dave", passwd="a long password", preset="p1")
    in_use = billing.json("preset.delete", elid="p1")["error"]
    assert "dave" in in_use["detail"]["$"]
