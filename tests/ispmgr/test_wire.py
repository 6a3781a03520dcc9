"""/ispmgr's wire shapes as the contract file gives them: JSON mapped from XML, `elem` always an array,
errors in doc.error with $type, $object, msg.$ and detail.$ at HTTP 200, XML that a strict parser reads,
the text form; authentication by authinfo, func=auth sessions and session.newkey keys."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from tests.conftest import Users, csrf_from
from tests.ispmgr.conftest import Billing


def user_count(app) -> int:
    from app.extensions import db
    from app.models import User

    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(User))


def active(app, name: str) -> bool:
    from app.extensions import db
    from app.models import User

    with app.app_context():
        return db.session.scalar(select(User.active).where(User.name == name))


def test_whoami_and_license_info_in_every_shape(billing):
    """whoami names the caller with its ISPmanager level; license.info names a Business product."""
    doc = billing.json("whoami")
    assert doc["user"] == {"$name": "root", "$level": "29", "$": "root"}
    xml = billing.xml("whoami")
    assert xml.tag == "doc" and xml.find("user").get("name") == "root" and xml.find("user").text == "root"
    assert billing.text("whoami") == "user=root\n"
    assert "Business" in billing.json("license.info")["mgr"]["$"]


def test_a_wrong_password_is_the_contracts_error_shape(app, billing):
    """JSON: doc.error with $type auth, $object badpassword, msg.$ and detail.$; XML: type attribute and <msg>;
    text: ERROR auth(badpassword); an unknown user gets the same answer; always HTTP 200."""
    for login in ("root", "nobody"):
        wrong = Billing(billing.client, login, "wrong password")
        error = wrong.json("user")["error"]
        assert error["$type"] == "auth" and error["$object"] == "badpassword"
        assert error["detail"]["$"] == error["msg"]["$"] == "Invalid username or password"
        assert "elem" not in wrong.json("user")
        xml = wrong.xml("user", method="POST").find("error")
        assert xml.get("type") == "auth" and xml.find("msg").text == "Invalid username or password"
        assert xml.find("detail").text == "Invalid username or password"
        assert wrong.text("user").startswith("ERROR auth(badpassword): ")
    assert "error" in Billing(billing.client, "root", "").json("whoami")
    no_colon = billing.json("whoami", authinfo="root")["error"]
    assert no_colon["$type"] == "auth" and no_colon["$object"] == "authinfo"
    anonymous = billing.raw(func="whoami", out="json")
    assert json.loads(anonymous.text)["doc"]["error"]["$type"] == "auth"


def test_an_api_token_works_as_the_password(app, billing):
    """authinfo=root:<token>; a token of another account does not open root."""
    from app.extensions import db
    from app.models import User
    from app.services import accounts

    with app.app_context():
        root = db.session.scalar(select(User).where(User.name == "root"))
        raw = accounts.create_token(root, "billing")[1]
    assert Billing(billing.client, "root", raw).json("whoami")["user"]["$name"] == "root"
    assert Billing(billing.client, "someone", raw).json("whoami")["error"]["$object"] == "badpassword"


def test_func_auth_session_is_bound_to_the_address_and_ends_with_the_password(app, billing, cluster):
    """func=auth answers doc.auth.$id; auth=<id> works from that address only, and not after a password
    change; a made-up id is refused."""
    doc = billing.raw(func="auth", out="json", username="root", password=Users.PASSWORD)
    auth = json.loads(doc.text)["doc"]["auth"]
    sid = auth["$id"]
    assert auth["$"] == sid and auth["$level"] == "29" and len(sid) == 32
    session = Billing(billing.client, "x", "y")
    assert session.json("whoami", authinfo="", auth=sid)["user"]["$name"] == "root"
    elsewhere = billing.client.get("/ispmgr", query_string={"func": "whoami", "out": "json", "auth": sid},
                                   environ_base={"REMOTE_ADDR": "192.0.2.99"})
    assert json.loads(elsewhere.text)["doc"]["error"]["$type"] == "auth"
    assert session.json("whoami", authinfo="", auth="0" * 32)["error"]["$object"] == "session"
    bad = billing.raw(func="auth", out="xml", username="root", password="wrong password")
    assert b'type="auth"' in bad.data and b"<auth" not in bad.data
    billing.json("usrparam", sok="ok", passwd="a brand new password")
    assert session.json("whoami", authinfo="", auth=sid)["error"]["$type"] == "auth"


def test_the_panel_cookie_alone_changes_nothing(app, client, auth, cluster):
    """A browser logged in to the panel as an administrator calls /ispmgr with its cookie only: refused."""
    cluster.node("a")
    auth.login("root")
    cluster.user("alice")
    answer = client.post("/ispmgr", data={"func": "user.suspend", "elid": "alice", "out": "json"})
    assert answer.status_code == 200 and answer.json["doc"]["error"]["$type"] == "auth"
    assert active(app, "alice") is True


def test_lists_are_arrays_even_of_one_and_xml_parses_strictly(billing, cluster):
    """One customer and one preset: doc.elem is a one-element array in JSON, <elem> in XML."""
    cluster.user("alice")
    billing.json("preset.edit", sok="ok", name="Basic", limit_webdomains="2")
    users = billing.json("user", sok="ok")["elem"]
    assert isinstance(users, list) and [u["name"]["$"] for u in users] == ["alice"]
    assert users[0]["active"]["$"] == "on" and users[0]["level"]["$"] == "16"
    presets = billing.json("preset")["elem"]
    assert isinstance(presets, list) and presets[0]["name"]["$"] == "Basic"
    assert presets[0]["limit_webdomains"]["$"] == "2"
    xml = billing.xml("user")
    assert [e.findtext("name") for e in xml.findall("elem")] == ["alice"]
    assert billing.text("user").startswith("id=")


def test_unknown_func_and_unknown_parameters(billing):
    """An unknown func is error missed naming it; parameters nobody knows are ignored."""
    error = billing.json("no.such.func")["error"]
    assert error["$type"] == "missed" and error["$object"] == "no.such.func" and error["detail"]["$"]
    assert billing.json("whoami", colour="red", limit_cpu="5", sok="ok")["user"]["$name"] == "root"


@pytest.mark.parametrize("hostile", ["\x00", "a\x01b", "<doc>&amp;", "]]>", "x" * 5000, "é\u202e"])
def test_hostile_values_answer_errors_a_strict_parser_reads(app, billing, hostile):
    """Every hostile value in every parameter of a create: an error naming a parameter, valid XML, nothing
    written."""
    before = user_count(app)
    for param in ("name", "passwd", "preset", "limit_webdomains", "confirm"):
        if param == "passwd" and hostile == "<doc>&amp;":
            continue  # printable and long enough: a good password
        params = {"sok": "ok", "name": "carol", "passwd": "a long password", param: hostile}
        for out in ("xml", "json"):
            if out == "xml":
                error = billing.xml("user.edit", method="POST", **params).find("error")
                assert error is not None and error.get("object") and error.findtext("msg")
            else:
                error = billing.json("user.edit", **params)["error"]
                assert error["$object"] and error["detail"]["$"]
    assert billing.xml("user.suspend", elid=hostile).find("error").get("object") == "elid"
    assert billing.xml("whoami", su=hostile).find("error") is not None
    assert user_count(app) == before


def test_session_newkey_opens_the_panel_as_the_user_once(app, billing, cluster):
    """An administrator makes a key; func=auth with it logs the browser in as that user, once."""
    cluster.user("alice")
    key = "k" * 24
    assert "ok" in billing.json("session.newkey", username="alice", key=key)
    browser = app.test_client()
    opened = browser.get("/ispmgr", query_string={"func": "auth", "username": "alice", "key": key,
                                                  "checkcookie": "no"})
    assert opened.status_code == 303
    page = browser.get("/account/tokens")
    assert page.status_code == 200 and "alice" in page.text and csrf_from(page.text)
    again = app.test_client().get("/ispmgr", query_string={"func": "auth", "username": "alice", "key": key,
                                                           "out": "json"})
    assert again.json["doc"]["error"]["$object"] == "badkey"
    short = billing.json("session.newkey", username="alice", key="short")["error"]
    assert short["$type"] == "value" and short["$object"] == "key"
