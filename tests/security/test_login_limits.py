"""Login limits stop guessing but cannot be turned on the administrators.

The counters are real (Redis through `limits`); addresses are the test client's REMOTE_ADDR, and a reverse
proxy is the same client sending X-Forwarded-For from 127.0.0.1.
"""

from __future__ import annotations

import pytest

from tests.conftest import Users, csrf_from
from tests.userdata.conftest import basic


def post_login(client, name: str, password: str = Users.PASSWORD, **request):
    """The login form posted as a browser would (GET for the CSRF token, then POST)."""
    page = client.get("/login", **request)
    return client.post("/login", data={"username": name, "password": password, "csrf_token": csrf_from(page.text)},
                       **request)


def log_out(client) -> None:
    """Press Log out."""
    assert client.post("/logout", data={"csrf_token": csrf_from(client.get("/cluster/nodes").text)}).status_code == 302


def from_address(address: str, forwarded_for: str | None = None) -> dict:
    """Request arguments for a client at `address` (optionally a proxy forwarding for another)."""
    request = {"environ_base": {"REMOTE_ADDR": address}}
    if forwarded_for:
        request["headers"] = {"X-Forwarded-For": forwarded_for}
    return request


def test_wrong_passwords_for_other_names_do_not_lock_out_the_admin(app, client, users):
    """Ten wrong passwords for any names from one address, then admin's right password from it: logged in
    (before: 429 for everyone at that address, which behind a proxy is everyone)."""
    users.make("admin", admin=True)
    users.make("alice")
    for name in ["alice"] * 10 + ["nobody", "root", "ghost"]:
        assert post_login(client, name, "guess").status_code in (400, 429)
    response = post_login(client, "admin")
    assert response.status_code == 302, response.text[:300]
    assert client.get("/cluster/nodes").status_code == 200


def test_wrong_basic_passwords_for_other_names_do_not_lock_out_the_admin(app, client, users):
    """The same through the API's HTTP Basic."""
    users.make("admin", admin=True)
    for name in ["alice"] * 10 + ["nobody"]:
        client.get("/api/v1/operations", headers=basic(name, "guess"))
    assert client.get("/api/v1/operations", headers=basic("admin")).status_code == 200


def test_a_brute_force_of_one_name_is_stopped(app, client, users):
    """LOGIN_RATE_LIMIT wrong passwords for a name from one address: its next tries from there are refused
    unchecked, the right password too; the form and HTTP Basic share the count."""
    users.make("alice")
    for _ in range(6):
        assert post_login(client, "alice", "guess").status_code == 400
    for _ in range(4):
        assert client.get("/api/v1/operations", headers=basic("alice", "guess")).status_code == 401
    refused = post_login(client, "alice")
    assert refused.status_code == 429 and "Too many failed logins for this user from here" in refused.text
    assert client.get("/api/v1/operations", headers=basic("alice")).status_code == 429
    assert client.get("/cluster/nodes").status_code == 302, "not logged in"


def test_many_addresses_meet_the_account_limit_but_the_owners_browser_gets_in(app, client, users):
    """Wrong passwords from many addresses fill the per-account count: new clients and HTTP Basic are refused
    for that name, a browser that logged in to it before (its device cookie) is not, nor a Bearer token."""
    from app.extensions import db
    from app.models import User
    from app.services import accounts

    users.make("admin", admin=True)
    owners_browser = app.test_client()
    assert post_login(owners_browser, "admin", **from_address("198.51.100.1")).status_code == 302
    log_out(owners_browser)
    app.config["LOGIN_ACCOUNT_RATE_LIMIT"] = "5 per hour"
    for n in range(5):
        attacker = app.test_client()
        assert post_login(attacker, "admin", "guess", **from_address(f"203.0.113.{n}")).status_code == 400
    newcomer = post_login(app.test_client(), "admin", **from_address("192.0.2.50"))
    assert newcomer.status_code == 429 and "a browser that has logged in to it before" in newcomer.text
    basic_call = client.get("/api/v1/operations", headers=basic("admin"), **from_address("192.0.2.51"))
    assert basic_call.status_code == 429
    assert post_login(owners_browser, "admin", **from_address("192.0.2.52")).status_code == 302
    with app.app_context():
        _, raw = accounts.create_token(db.session.scalar(db.select(User).where(User.name == "admin")), "script")
    assert client.get("/api/v1/operations", headers={"Authorization": f"Bearer {raw}"}).status_code == 200
    # The right password ended the streak: new clients get in again.
    assert post_login(app.test_client(), "admin", **from_address("192.0.2.53")).status_code == 302


def test_a_device_cookie_counts_only_for_its_own_user(app, users):
    """A browser that logged in as alice is a new client for admin: no way around admin's account limit."""
    from app import ratelimit

    users.make("admin", admin=True)
    users.make("alice")
    browser = app.test_client()
    assert post_login(browser, "alice").status_code == 302
    assert browser.get_cookie(ratelimit.DEVICE_COOKIE, path="/login") is not None
    log_out(browser)
    app.config["LOGIN_ACCOUNT_RATE_LIMIT"] = "2 per hour"
    for _ in range(2):
        assert post_login(browser, "admin", "guess").status_code == 400
    assert post_login(browser, "admin").status_code == 429
    forged = app.test_client()
    forged.set_cookie(ratelimit.DEVICE_COOKIE, "forged", path="/login")
    assert post_login(forged, "admin").status_code == 429


def test_forwarded_addresses_are_ignored_without_trusted_proxies(app, client, users):
    """X-Forwarded-For from a peer that is no configured proxy changes nothing: rotating it buys no tries."""
    users.make("alice")
    for n in range(10):
        post_login(client, "alice", "guess", **from_address("127.0.0.1", f"203.0.113.{n}"))
    assert post_login(client, "alice", **from_address("127.0.0.1", "198.51.100.7")).status_code == 429


def test_behind_a_trusted_proxy_each_client_counts_alone(app, client, users):
    """TRUSTED_PROXIES=127.0.0.1: an attacker behind the proxy locks only themselves out of alice; alice, behind
    the same proxy, logs in. A peer outside TRUSTED_PROXIES still cannot choose its address."""
    from app import proxies

    users.make("alice")
    app.config["TRUSTED_PROXIES"] = "127.0.0.1"
    proxies.init_app(app)
    for _ in range(10):
        post_login(client, "alice", "guess", **from_address("127.0.0.1", "203.0.113.9"))
    assert post_login(client, "alice", **from_address("127.0.0.1", "203.0.113.9")).status_code == 429
    assert post_login(app.test_client(), "alice", **from_address("127.0.0.1", "198.51.100.7")).status_code == 302
    direct = app.test_client()
    for n in range(10):
        post_login(direct, "alice", "guess", **from_address("192.0.2.9", f"198.51.100.{n}"))
    assert post_login(direct, "alice", **from_address("192.0.2.9", "198.51.100.200")).status_code == 429


def test_trusted_proxies_come_from_the_environment_and_bad_values_stop_the_start(tmp_path, redis_url, monkeypatch):
    """TRUSTED_PROXIES takes addresses and networks; an entry that is neither stops the start, named."""
    from app import create_app, proxies
    from app.config import TestConfig

    monkeypatch.setenv("TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/24")
    config = TestConfig(tmp_path, redis_url)
    assert [str(n) for n in proxies.parse_trusted(config.TRUSTED_PROXIES)] == ["127.0.0.1/32", "10.0.0.0/24"]
    config.TRUSTED_PROXIES = "127.0.0.1, nginx"
    with pytest.raises(ValueError, match="TRUSTED_PROXIES: 'nginx'"):
        create_app(config)
