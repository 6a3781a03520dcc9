"""Every hostile value to every field of every endpoint: a 4xx naming the field, tree untouched."""

from __future__ import annotations

import itertools
import json
import re
import unicodedata
from pathlib import Path

import pytest

from agent.ops import mail
from agent.tests.ops_helpers import (
    config_digest,
    list_body,
    make_app,
    nft_usable,
    require_binary,
)

CORPUS = json.loads((Path(__file__).parent / "hostile_corpus.json").read_text())
VALUES = [
    (item["why"], item["repeat"][0] * item["repeat"][1] if "repeat" in item else item["value"])
    for item in CORPUS["values"]
]
_serial = itertools.count(1)

# Fields that are free text by nature: a shell command, a comment, a password. There a value
# that is one printable line is legitimate; it must still never carry a control character.
FREE_TEXT = {"command", "comment", "password"}
# Optional fields where null or a blank string means "not set" (any source, all ports...).
BLANK_MEANS_UNSET = {"source", "ports", "comment", "docroot", "priority", "aliases", "nameservers", "forward"}


def _list_case(name: str, row: dict, field: str):
    """A list PUT with one row whose field holds the value."""
    def build(value, n):
        return "PUT", f"/v1/lists/{name}", list_body([{**row, field: value}], version=n)
    return build, f"rows[0].{field}"


def _object_case(path: str, make: callable, field: str, wrap: bool = False):
    """A POST whose body (unique per request) has field set to the value."""
    def build(value, n):
        return "POST", path, {**make(n), field: [value] if wrap else value}
    return build, field


FIREWALL_ROW = {"id": 1, "action": "accept", "protocol": "tcp", "ports": "80", "source": "",
                "comment": ""}
CRON_ROW = {"id": 1, "schedule": "@daily", "user": "root", "command": "/bin/true", "comment": "",
            "enabled": True}
SENDER_ROW = {"id": 1, "sender": "example.org"}


def web(n):
    """A valid web domain body."""
    return {"name": f"w{n}.example.com", "owner": "alice", "php": False}


def zone(n):
    """A valid domain-name body."""
    return {"name": f"z{n}.example.com", "owner": "alice", "ip": "192.0.2.1"}


def record(n):
    """A valid A record body."""
    return {"name": f"r{n}", "type": "A", "value": "192.0.2.2", "ttl": 300}


def maildomain(n):
    """A valid mail domain body."""
    return {"name": f"m{n}.example.com", "owner": "alice"}


def mailbox(n):
    """A valid mailbox body."""
    return {"address": f"box{n}@example.com", "password": "a fine password", "quota_mb": 10}


def user(n):
    """A valid account body."""
    return {"name": f"u{n}", "uid": 3000 + n, "gid": 3000 + n, "shell": "/bin/bash"}


CASES = {
    **{f"firewall.{f}": _list_case("firewall", FIREWALL_ROW, f) for f in FIREWALL_ROW},
    **{f"scheduler.{f}": _list_case("scheduler", CRON_ROW, f) for f in CRON_ROW},
    **{f"mail_whitelist.{f}": _list_case("mail_whitelist", SENDER_ROW, f) for f in SENDER_ROW},
    **{f"mail_blacklist.{f}": _list_case("mail_blacklist", SENDER_ROW, f) for f in SENDER_ROW},
    **{f"users.{f}": _object_case("/v1/users", user, f) for f in user(0)},
    **{f"webdomains.{f}": _object_case("/v1/webdomains", web, f) for f in web(0)},
    "webdomains.docroot": _object_case("/v1/webdomains", web, "docroot"),
    "webdomains.aliases": _object_case("/v1/webdomains", web, "aliases", wrap=True),
    **{f"domains.{f}": _object_case("/v1/domains", zone, f) for f in zone(0)},
    "domains.nameservers": _object_case("/v1/domains", zone, "nameservers", wrap=True),
    **{f"records.{f}": _object_case("/v1/domains/example.com/records", record, f)
       for f in [*record(0), "priority"]},
    **{f"maildomains.{f}": _object_case("/v1/maildomains", maildomain, f) for f in maildomain(0)},
    **{f"mailboxes.{f}": _object_case("/v1/mailboxes", mailbox, f) for f in mailbox(0)},
    "mailboxes.forward": _object_case("/v1/mailboxes", mailbox, "forward"),
    "mailboxes.forward[]": (_object_case("/v1/mailboxes", mailbox, "forward", wrap=True)[0], "forward"),
    "suspension.suspended": (lambda value, n: ("PUT", "/v1/users/alice/suspension", {"suspended": value}),
                             "suspended"),
}


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    """One real agent app with a zone and a mail domain to add records and mailboxes to."""
    require_binary("nginx", "named-checkzone", "named-checkconf", "exim", "doveconf", "useradd")
    if nft_usable():
        pytest.skip(nft_usable())
    config, _reloads, client = make_app(tmp_path_factory.mktemp("hostile"))
    # The minimum SHA-crypt cost: dozens of accepted hostile passwords get hashed here.
    rounds, mail.CRYPT_ROUNDS = mail.CRYPT_ROUNDS, 1000
    assert client.request("POST", "/v1/domains", zone(0) | {"name": "example.com"}).status_code == 201
    assert client.request("POST", "/v1/maildomains",
                          {"name": "example.com", "owner": "alice"}).status_code == 201
    yield config, client
    mail.CRYPT_ROUNDS = rounds


def _legitimate(case: str, value: object) -> bool:
    """Whether a value may be accepted in this field (free text, or a blank optional one)."""
    bare = case.rsplit(".", 1)[-1].removesuffix("[]")
    if case == "records.name" and isinstance(value, str):
        # Numeric labels (999.1.1.1) are legal owner names inside a zone.
        return all(re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", p) for p in value.split("."))
    if bare in BLANK_MEANS_UNSET and (value is None or (isinstance(value, str) and not value.strip())):
        return True
    if bare in ("enabled", "php", "suspended") and isinstance(value, bool):
        return True
    if bare == "docroot" and isinstance(value, str):
        # A plain folder name below the owner's home is a fine document root.
        parts = value.split("/")
        return all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", p) and p != ".." for p in parts)
    if bare in FREE_TEXT and isinstance(value, str):
        return not any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in value)
    return False


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_every_hostile_value_is_refused(agent, case):
    """Each value gets a 4xx JSON error naming the field, and the tree stays byte-for-byte."""
    config, client = agent
    build, field = CASES[case]
    before = config_digest(config)
    for why, value in VALUES:
        method, path, body = build(value, next(_serial))
        response = client.request(method, path, body)
        after = config_digest(config)
        if response.status_code < 300 and _legitimate(case, value):
            before = after
            continue
        assert 400 <= response.status_code < 500, (case, why, response.status_code, response.json)
        assert field in response.json.get("fields", {}), (case, why, response.json)
        assert after == before, (case, why)


def test_hostile_passwords_are_stored_hashed_only(agent):
    """A password full of shell and config syntax is accepted, but only its hash is stored."""
    config, client = agent
    secret = "$(reboot); } \"'`id` ../../etc"
    response = client.request("POST", "/v1/mailboxes",
                              {"address": "pw@example.com", "password": secret})
    assert response.status_code == 201
    for path in [*Path(config.root).rglob("*"), *Path(config.state_dir).rglob("*")]:
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
