"""OS accounts: fixed UID/GID, idempotent create, refusal while the user owns data."""

from __future__ import annotations

import os

import pytest

from agent.ops import apply, dns, mail, suspension, users, web
from agent.tests.ops_helpers import config_digest, make_config, require_binary
from agent.validation import ValidationError

CAROL = {"name": "carol", "uid": 2001, "gid": 2001, "shell": "/bin/bash"}


@pytest.fixture
def agent(tmp_path):
    """A config under a private root; shadow-utils must be installed."""
    require_binary("useradd", "groupadd", "userdel", "usermod")
    return make_config(tmp_path)


def test_create_with_fixed_ids_and_home(agent):
    """The account gets the master's UID/GID and a home under the root prefix."""
    config, _ = agent
    user, changed = users.create(config, CAROL)
    assert changed and user["uid"] == 2001 and user["gid"] == 2001
    assert "carol:x:2001:2001::/home/carol:/bin/bash" in (config.root / "etc/passwd").read_text()
    assert (config.root / "home/carol").is_dir()


def test_create_twice_changes_nothing(agent):
    """The same account again is a no-op."""
    config, _ = agent
    users.create(config, CAROL)
    before = config_digest(config)
    _user, changed = users.create(config, CAROL)
    assert changed is False
    assert config_digest(config) == before


def test_conflicting_uid_refused(agent):
    """A UID held by someone else, or an existing name with another UID, is a conflict."""
    config, _ = agent
    users.create(config, CAROL)
    with pytest.raises(apply.Conflict):
        users.create(config, {**CAROL, "name": "dave"})
    with pytest.raises(apply.Conflict):
        users.create(config, {**CAROL, "uid": 2002, "gid": 2002})


def test_update_shell_and_delete(agent):
    """Shell changes go through usermod; delete removes the account and its group."""
    config, _ = agent
    users.create(config, CAROL)
    assert users.update(config, "carol", {"shell": "/usr/sbin/nologin"})["shell"] == "/usr/sbin/nologin"
    users.delete(config, "carol")
    assert "carol" not in (config.root / "etc/passwd").read_text()
    assert "carol" not in (config.root / "etc/group").read_text()


def test_a_deleted_accounts_home_goes_with_it(agent):
    """Carol's home (her site's files) is removed with her account: a later carol, with another UID,
    gets a fresh home of her own, not the old customer's files under a home she could not write."""
    config, _ = agent
    users.create(config, CAROL)
    site = config.root / "home/carol/www/carol.example.com"
    site.mkdir(parents=True)
    (site / "index.php").write_text("<?php // the old customer's code")
    (config.root / "home/carol/link").symlink_to(config.root / "etc")
    users.delete(config, "carol")
    assert not (config.root / "home/carol").exists()
    assert (config.root / "etc/passwd").exists(), "a link inside the home is removed, never followed"
    users.create(config, {**CAROL, "uid": 2005, "gid": 2005})
    home = config.root / "home/carol"
    assert home.is_dir() and list(home.rglob("*.php")) == []
    if os.geteuid() == 0:
        assert home.stat().st_uid == 2005


def test_a_deleted_accounts_php_pool_goes_with_it(agent):
    """A pool outlives its owner's last site; left behind its account, php-fpm would refuse the pool of a user
    that no longer exists at its next reload or start, and no customer's PHP would run."""
    require_binary("nginx")
    config, _ = agent
    users.create(config, CAROL)
    web.create(config, {"name": "carol.example", "owner": "carol", "php": True})
    web.delete(config, "carol.example")
    pool = config.root / web.POOL_DIR / "hostfleet-carol.conf"
    assert pool.exists()
    users.delete(config, "carol")
    assert not pool.exists()


def test_delete_refused_while_user_owns_data(agent):
    """A user who still owns a web domain here cannot be deleted."""
    require_binary("nginx")
    config, _ = agent
    users.create(config, CAROL)
    web.create(config, {"name": "carol.example.com", "owner": "carol"})
    with pytest.raises(apply.Conflict, match="web domain carol.example.com"):
        users.delete(config, "carol")


def test_purge_removes_an_owners_records_with_one_apply_per_service(agent):
    """Deleting a user: everything alice holds here goes in one check and reload per service, not one
    per record; bob's records stay; repeating it removes nothing; the account can then be deleted."""
    require_binary("nginx", "named-checkzone", "exim", "doveconf")
    config, reloads = agent
    for owner, count in (("alice", 3), ("bob", 1)):
        for i in range(count):
            web.create(config, {"name": f"{owner}{i}.example.com", "owner": owner})
            dns.create(config, {"name": f"{owner}{i}.example.org", "owner": owner, "ip": "192.0.2.1"})
            mail.create_domain(config, {"name": f"{owner}{i}.example.net", "owner": owner})
            mail.create_mailbox(config, {"address": f"me@{owner}{i}.example.net", "password": "long enough pw"})
    before = len(reloads.calls())
    removed = users.purge(config, "alice")
    assert removed == {"mailboxes": [f"me@alice{i}.example.net" for i in range(3)],
                       "maildomains": [f"alice{i}.example.net" for i in range(3)],
                       "webdomains": [f"alice{i}.example.com" for i in range(3)],
                       "domains": [f"alice{i}.example.org" for i in range(3)]}
    assert sorted(reloads.calls()[before:]) == ["bind", "dovecot", "exim", "nginx"]
    assert [d["name"] for d in web.list_domains(config)] == ["bob0.example.com"]
    assert [d["name"] for d in dns.list_domains(config)] == ["bob0.example.org"]
    assert [d["name"] for d in mail.list_domains(config)] == ["bob0.example.net"]
    assert [m["address"] for m in mail.list_mailboxes(config)] == ["me@bob0.example.net"]
    assert "me@alice0" not in (config.root / mail.PASSWD).read_text()
    assert not (config.root / web.VHOST_DIR / "alice" / "alice0.example.com.conf").exists()
    before = len(reloads.calls())
    assert users.purge(config, "alice") == {"mailboxes": [], "maildomains": [], "webdomains": [], "domains": []}
    assert reloads.calls()[before:] == []
    users.delete(config, "alice")
    with pytest.raises(ValidationError) as refused:
        users.purge(config, "Alice;")
    assert refused.value.field == "name"


def test_a_deleted_accounts_suspension_does_not_pass_to_a_new_account_of_its_name(agent):
    """Carol suspended, her data and account deleted; a new carol (another customer, later) starts
    active: her site answers, not the "suspended" page."""
    require_binary("nginx", "exim", "doveconf")
    config, _ = agent
    users.create(config, CAROL)
    suspension.set_suspended(config, "carol", {"suspended": True})
    web.create(config, {"name": "carol.example.com", "owner": "carol"})
    web.delete(config, "carol.example.com")
    users.delete(config, "carol")
    assert suspension.get(config, "carol")["suspended"] is False
    users.create(config, {**CAROL, "uid": 2005, "gid": 2005})
    web.create(config, {"name": "new-carol.example.com", "owner": "carol"})
    served = (config.root / web.VHOST_DIR / "carol" / "new-carol.example.com.conf").read_text()
    assert "suspended" not in served


@pytest.mark.parametrize(
    "data, field",
    [({**CAROL, "name": "Carol"}, "name"), ({**CAROL, "name": "ca;rol"}, "name"),
     ({**CAROL, "uid": 0}, "uid"), ({**CAROL, "uid": "2001"}, "uid"),
     ({**CAROL, "gid": 65534}, "gid"), ({**CAROL, "shell": "/bin/evil"}, "shell")],
)
def test_bad_accounts_refused(agent, data, field):
    """Bad input names the field; the account files are untouched."""
    config, _ = agent
    before = config_digest(config)
    with pytest.raises(ValidationError) as caught:
        users.create(config, data)
    assert caught.value.field == field
    assert config_digest(config) == before
