"""Mailbox forwarding (exim's redirect with a kept copy) and suspending an owner's sites and mailboxes."""

from __future__ import annotations

import re
import stat
import subprocess

import pytest

from agent.ops import apply, mail, suspension, web
from agent.tests.ops_helpers import config_digest, make_app, make_config, require_binary
from agent.validation import ValidationError


@pytest.fixture
def agent(tmp_path):
    """A config with alice's mail domain and two mailboxes, and a web domain of hers and one of bob's."""
    require_binary("exim", "doveconf", "nginx")
    config, reloads = make_config(tmp_path)
    mail.CRYPT_ROUNDS, rounds = 1000, mail.CRYPT_ROUNDS
    mail.create_domain(config, {"name": "example.com", "owner": "alice"})
    mail.create_mailbox(config, {"address": "info@example.com", "password": "a fine password"})
    mail.create_mailbox(config, {"address": "sales@example.com", "password": "a fine password"})
    web.create(config, {"name": "alice.example", "owner": "alice", "php": True})
    web.create(config, {"name": "bob.example", "owner": "bob"})
    yield config, reloads
    mail.CRYPT_ROUNDS = rounds


def exim_route(config, address: str) -> str:
    """`exim -bt` on the rendered configuration as it routes a hosted domain whose MX is this node: every
    hosted domain made local, as this machine has no DNS to point an MX here (the lab's
    test_hosted_mail_domains_are_local_only_where_their_mx_points shows the MX check itself)."""
    rendered = (config.root / mail.EXIM_CONF).read_text()
    local = re.compile(r"^domainlist local_domains = .*?\}\{\$domain\}\{\}\}$", re.M | re.S)
    assert local.search(rendered), "the rendered config no longer defines local_domains as expected"
    mx_here = config.root / "etc/exim4/exim4-mx-here.conf"
    mx_here.write_text(local.sub("domainlist local_domains = +hosted_domains", rendered))
    proc = subprocess.run(["exim", "-C", str(mx_here), "-bt", address], capture_output=True, text=True)
    return proc.stdout + proc.stderr


def test_forwarding_is_validated_stored_and_rendered(agent):
    """Forward addresses are normalized, stored, shown, and written as exim's forwards file."""
    config, reloads = agent
    shown = mail.update_mailbox(config, "sales@example.com", {"forward": ["Info@Example.com", "boss@other.org"]})
    assert shown == {"address": "sales@example.com", "quota_mb": 0,
                     "forward": ["info@example.com", "boss@other.org"]}
    assert (config.root / mail.EXIM_DIR / "forwards").read_text() == (
        "sales@example.com: info@example.com, boss@other.org\n")
    assert reloads.calls()[-1] == "exim"
    mail.check(config)
    # Changing the password keeps the forwarding; an empty value removes it.
    mail.update_mailbox(config, "sales@example.com", {"password": "another password"})
    assert mail.get_mailbox(config, "sales@example.com")["forward"] == ["info@example.com", "boss@other.org"]
    mail.update_mailbox(config, "sales@example.com", {"forward": ""})
    assert (config.root / mail.EXIM_DIR / "forwards").read_text() == ""


@pytest.mark.parametrize(("value", "why"), [
    (["sales@example.com"], "itself"),
    (["not an address"], "forward"),
    ([f"a{i}@example.org" for i in range(mail.MAX_FORWARDS + 1)], "at most"),
    ({"a": 1}, "list"),
    (["x@example.org\nroot@localhost"], "forward"),
    (["|/bin/sh@example.org"], "forward"),
])
def test_bad_forwarding_is_refused_and_nothing_changes(agent, value, why):
    """A bad forward: ValidationError on the field `forward`, no file touched, no reload."""
    config, reloads = agent
    before, calls = config_digest(config), reloads.calls()
    with pytest.raises(ValidationError) as caught:
        mail.update_mailbox(config, "sales@example.com", {"forward": value})
    assert caught.value.field == "forward"
    assert why in caught.value.message or why == "forward"
    assert config_digest(config) == before and reloads.calls() == calls


def test_exim_routes_a_copy_and_keeps_one(agent):
    """exim -bt: mail to a forwarding mailbox goes to its forward address and to itself."""
    config, _ = agent
    mail.update_mailbox(config, "sales@example.com", {"forward": ["info@example.com"]})
    route = exim_route(config, "sales@example.com")
    assert "info@example.com" in route and "hostfleet_maildir" in route, route
    assert route.count("transport = hostfleet_maildir") == 2, route
    unknown = exim_route(config, "nobody@example.com")
    assert "Unrouteable address" in unknown or "is undeliverable" in unknown, unknown


def test_suspend_renders_503_page_and_refuses_logins(agent):
    """Suspending alice: her vhost answers 503 "suspended", her pool goes, her mailboxes get nologin; bob untouched."""
    config, reloads = agent
    bob_vhost = (config.root / web.VHOST_DIR / "bob" / "bob.example.conf").read_bytes()
    answer = suspension.set_suspended(config, "alice", {"suspended": True})
    assert answer == {"name": "alice", "suspended": True, "changed": True}
    vhost = (config.root / web.VHOST_DIR / "alice" / "alice.example.conf").read_text()
    assert "return 503" in vhost and "is suspended" in vhost and "fastcgi_pass" not in vhost
    assert not (config.root / web.POOL_DIR / "hostfleet-alice.conf").exists()
    assert (config.root / web.VHOST_DIR / "bob" / "bob.example.conf").read_bytes() == bob_vhost
    passwd = (config.root / mail.PASSWD).read_text().splitlines()
    assert all(line.endswith("nologin=y reason=account_suspended") for line in passwd), passwd
    web.nginx_test(config)
    mail.check(config)
    assert {"nginx", "php-fpm", "dovecot"} <= set(reloads.calls())
    assert suspension.get(config, "alice") == {"name": "alice", "suspended": True}
    # A domain added while suspended is suspended too; the same request again changes nothing.
    web.create(config, {"name": "new.alice.example", "owner": "alice"})
    assert "return 503" in (config.root / web.VHOST_DIR / "alice" / "new.alice.example.conf").read_text()
    calls = reloads.calls()
    assert suspension.set_suspended(config, "alice", {"suspended": True})["changed"] is False
    assert reloads.calls() == calls

    assert suspension.set_suspended(config, "alice", {"suspended": False})["changed"] is True
    vhost = (config.root / web.VHOST_DIR / "alice" / "alice.example.conf").read_text()
    assert "return 503" not in vhost and "fastcgi_pass" in vhost
    assert (config.root / web.POOL_DIR / "hostfleet-alice.conf").exists()
    assert "nologin" not in (config.root / mail.PASSWD).read_text()


def test_suspend_rolls_back_the_sites_when_mail_is_refused(agent, monkeypatch):
    """The mail checker refuses: the sites are put back too, nothing recorded as suspended."""
    config, _ = agent
    before = config_digest(config)

    def refuse(_config):
        raise apply.CheckFailed("dovecot", "refused for the test")

    monkeypatch.setattr(mail, "check", refuse)
    with pytest.raises(apply.CheckFailed):
        suspension.set_suspended(config, "alice", {"suspended": True})
    assert suspension.owners(config) == set()
    assert {k: h for k, h in config_digest(config).items() if "/var/log/" not in k} == {
        k: h for k, h in before.items() if "/var/log/" not in k}


def test_new_domain_gets_an_owned_docroot_with_an_index(agent):
    """A new web domain's document root exists with a default page naming it; the home can be entered by
    the web server's group (www-data, 33 here), by no other account."""
    config, _ = agent
    docroot = config.root / "home" / "alice" / "www" / "alice.example"
    assert "<h1>alice.example</h1>" in (docroot / "index.html").read_text()
    assert (docroot.stat().st_uid, docroot.stat().st_gid) == (1001, 33)
    home = (config.root / "home" / "alice").stat()
    assert (home.st_gid, stat.S_IMODE(home.st_mode)) == (33, 0o710)
    (docroot / "index.html").write_text("mine")
    web.update(config, "alice.example", {"php": False})
    assert (docroot / "index.html").read_text() == "mine"


def test_suspension_route(tmp_path):
    """PUT /v1/users/<name>/suspension through the signed app; bad input is a 400 naming the field."""
    require_binary("exim", "doveconf", "nginx")
    _config, _reloads, client = make_app(tmp_path)
    done = client.request("PUT", "/v1/users/alice/suspension", {"suspended": True})
    assert done.status_code == 200 and done.json["name"] == "alice" and done.json["suspended"] is True
    assert client.request("GET", "/v1/users/alice/suspension").json == {"name": "alice", "suspended": True}
    bad = client.request("PUT", "/v1/users/alice/suspension", {"suspended": "yes"})
    assert bad.status_code == 400 and "suspended" in bad.json["fields"]
    missing = client.request("PUT", "/v1/users/alice/suspension", {})
    assert missing.status_code == 400 and "suspended" in missing.json["fields"]
    name = client.request("PUT", "/v1/users/Bad Name/suspension", {"suspended": True})
    assert name.status_code == 400 and "name" in name.json["fields"]
