"""Attacks on /ispmgr by a hostile customer (the review of the ISPmanager endpoint)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Users


def call(client, **params):
    params.setdefault("out", "json")
    return client.get("/ispmgr", query_string=params)


@pytest.mark.parametrize("func,extra", [
    ("email.edit", {"sok": "ok", "name": "x", "domainname": "a.test", "maxsize": "\u00b2"}),
    ("domain.record.delete", {"plid": "nowhere.test", "elid": "\u00b2"}),
])
def test_unicode_digits_are_a_value_error_not_a_500(app, client, users, func, extra):
    """'²' passes str.isdigit() but int() refuses it: the answer must be ISPmanager's value error, never a 500."""
    users.make("mallory")
    answer = call(client, func=func, authinfo=f"mallory:{Users.PASSWORD}", **extra)
    assert answer.status_code == 200, answer.status_code
    assert json.loads(answer.text)["doc"]["error"]["$type"] == "value"


def test_a_huge_number_is_a_value_error_not_a_500(app, client, users):
    """int() refuses a string of over 4,300 digits: maxsize of 5,000 nines is a value error."""
    users.make("mallory")
    answer = call(client, func="email.edit", authinfo=f"mallory:{Users.PASSWORD}", sok="ok", name="x",
                  domainname="a.test", maxsize="9" * 5000)
    assert answer.status_code == 200
    assert json.loads(answer.text)["doc"]["error"]["$object"] == "maxsize"


def test_a_customer_cannot_lock_the_billing_systems_token_out(app, client, users):
    """mallory sends wrong passwords for root through /ispmgr from many addresses until root's per-account
    counter is full; the billing system's authinfo=root:<API token> must still work (a Bearer token is never
    affected by the login limits, and a token is the credential docs/ispmgr.md offers billing systems)."""
    from app.extensions import db
    from app.models import User
    from app.services import accounts

    users.make("root", admin=True)
    users.make("mallory")
    with app.app_context():
        _, token = accounts.create_token(db.session.scalar(db.select(User).where(User.name == "root")), "billing")
    app.config["LOGIN_ACCOUNT_RATE_LIMIT"] = "3 per hour"
    for n in range(3):
        answer = client.get("/ispmgr", query_string={"func": "whoami", "out": "json", "authinfo": "root:guess"},
                            environ_overrides={"REMOTE_ADDR": f"203.0.113.{n}"})
        assert json.loads(answer.text)["doc"]["error"]["$object"] == "badpassword"
    billing = client.get("/ispmgr", query_string={"func": "whoami", "out": "json", "authinfo": f"root:{token}"},
                         environ_overrides={"REMOTE_ADDR": "192.0.2.10"})
    doc = json.loads(billing.text)["doc"]
    assert doc.get("user", {}).get("$") == "root", doc


def _redis(app):
    from app.queues import redis_connection

    with app.app_context():
        return redis_connection()


def test_a_redis_writer_cannot_turn_an_ispmgr_session_into_an_administrators(app, client, users):
    """The panel's jobs are signed so that a process able to write to Redis (docs/security.md, "The panel's own
    server and its Redis") cannot act as the panel. An /ispmgr session lives in Redis too: mallory opens her
    own, then rewrites its record to name root; the session must stop working, not become root's."""
    users.make("root", admin=True)
    users.make("mallory")
    opened = json.loads(call(client, func="auth", username="mallory", password=Users.PASSWORD).text)["doc"]
    sid = opened["auth"]["$"]
    redis = _redis(app)
    [key] = [k for k in redis.keys("ispmgr:session:*")]
    raw = redis.get(key)
    record = json.loads(raw if raw.startswith(b"{") else raw.partition(b".")[2])  # the JSON, past any seal
    with app.app_context():
        from app.extensions import db
        from app.models import User

        root = db.session.scalar(db.select(User).where(User.name == "root"))
        record.update(user_id=root.id, epoch=root.session_epoch)
    redis.set(key, json.dumps(record))
    doc = json.loads(call(client, func="whoami", auth=sid).text)["doc"]
    assert doc.get("user", {}).get("$") != "root", doc
    assert doc["error"]["$type"] == "auth"


def test_a_redis_writer_cannot_make_a_login_key_for_an_administrator(app, client, users):
    """A one-time login key (session.newkey) is a Redis entry too: one written by someone without the panel's
    secret must not open the panel as root."""
    import hashlib

    users.make("root", admin=True)
    key = "k" * 32
    with app.app_context():
        from app.extensions import db
        from app.models import User

        root_id = db.session.scalar(db.select(User.id).where(User.name == "root"))
    _redis(app).set("ispmgr:key:" + hashlib.sha256(key.encode()).hexdigest(), str(root_id), ex=300)
    answer = client.get("/ispmgr", query_string={"func": "auth", "username": "root", "key": key})
    assert answer.status_code == 200 and "error" in answer.text, (answer.status_code, answer.headers.get("Location"))
