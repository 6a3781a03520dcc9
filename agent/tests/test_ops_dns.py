"""Domain names: named-checkzone/named-checkconf accept the zones, serials rise, rollback."""

from __future__ import annotations

import pytest

from agent.ops import apply, dns
from agent.tests.ops_helpers import config_digest, make_config, require_binary
from agent.validation import ValidationError

RECORDS = {
    "A": {"name": "api", "type": "A", "value": "192.0.2.10"},
    "AAAA": {"name": "api", "type": "AAAA", "value": "2001:db8::10"},
    "CNAME": {"name": "blog", "type": "CNAME", "value": "www"},
    "MX": {"name": "@", "type": "MX", "value": "mail.example.net.", "priority": 10},
    "TXT": {"name": "_dmarc", "type": "TXT", "value": 'v=DMARC1; p=reject; rua="x"'},
    "SRV": {"name": "_sip._tcp", "type": "SRV", "value": "5 5060 sip.example.net.", "priority": 10},
    "CAA": {"name": "@", "type": "CAA", "value": '0 issue "letsencrypt.org"'},
    "wildcard": {"name": "*", "type": "A", "value": "192.0.2.11", "ttl": 300},
}


@pytest.fixture
def agent(tmp_path):
    """A config under a private root with one zone; bind9-utils must be installed."""
    require_binary("named-checkzone", "named-checkconf")
    config, reloads = make_config(tmp_path)
    dns.create(config, {"name": "example.com", "owner": "alice", "ip": "192.0.2.1"})
    return config, reloads


def zone_text(config, zone="example.com"):
    """The zone file as written."""
    return dns.zone_path(config, zone).read_text()


@pytest.mark.parametrize("kind", RECORDS, ids=list(RECORDS))
def test_each_record_type_passes_named_checkzone(agent, kind):
    """Every record type renders into a zone that named-checkzone accepts; serial rises."""
    config, reloads = agent
    serial = dns.get(config, "example.com")["serial"]
    record = dns.add_record(config, "example.com", RECORDS[kind])
    assert f"IN {record['type']} {record['data']}" in zone_text(config)
    assert dns.get(config, "example.com")["serial"] > serial
    assert reloads.calls() == ["bind", "bind"]
    dns.check(config, {dns.zone_path(config, "example.com"): b""})


def test_include_lists_every_zone(agent):
    """The named.conf include names each zone file; named-checkconf accepts it."""
    config, _ = agent
    dns.create(config, {"name": "пример.рф", "owner": "bob", "nameservers": ["ns1.example.com"]})
    text = (config.root / dns.INCLUDE).read_text()
    assert 'zone "example.com"' in text and 'zone "xn--e1afmkfd.xn--p1ai"' in text


def test_same_request_twice_changes_nothing(agent):
    """Re-applying the same domains writes nothing, reloads nothing, keeps the serial."""
    config, reloads = agent
    rows = [{"name": "example.com", "owner": "alice", "ip": "192.0.2.1"}]
    serial = dns.get(config, "example.com")["serial"]
    before = config_digest(config)
    assert dns.replace_all(config, rows).changed is False
    assert config_digest(config) == before
    assert reloads.calls() == ["bind"]
    assert dns.get(config, "example.com")["serial"] == serial


def test_checker_refusal_returns_message_and_restores(agent):
    """A CNAME beside other data is refused with named-checkzone's words; old zone back."""
    config, reloads = agent
    before = config_digest(config)
    with pytest.raises(apply.CheckFailed, match="CNAME and other data"):
        dns.add_record(config, "example.com", {"name": "www", "type": "CNAME", "value": "@"})
    assert config_digest(config) == before
    assert reloads.calls() == ["bind"]


def test_reload_failure_restores_and_reloads_again(agent):
    """A failed reload puts the old zone back and reloads it."""
    config, reloads = agent
    previous = zone_text(config)
    reloads.fail()
    with pytest.raises(apply.ReloadFailed):
        dns.add_record(config, "example.com", RECORDS["A"])
    assert zone_text(config) == previous
    assert reloads.calls() == ["bind", "bind", "bind"]
    assert len(dns.get(config, "example.com")["records"]) == 4


def test_update_and_delete_records_and_zone(agent):
    """Record update and delete rewrite the zone; deleting the domain removes its file."""
    config, _ = agent
    record = dns.add_record(config, "example.com", RECORDS["A"])
    dns.update_record(config, "example.com", record["id"], {"value": "192.0.2.99"})
    assert "api 3600 IN A 192.0.2.99" in zone_text(config)
    dns.delete_record(config, "example.com", record["id"])
    assert "api " not in zone_text(config)
    dns.delete(config, "example.com")
    assert not dns.zone_path(config, "example.com").exists()
    assert 'zone "example.com"' not in (config.root / dns.INCLUDE).read_text()


def test_a_deleted_records_id_is_never_given_again(agent):
    """The highest record deleted, the next one added gets a new id: an id a stale page holds names nothing."""
    config, _ = agent
    first = dns.add_record(config, "example.com", RECORDS["A"])
    dns.delete_record(config, "example.com", first["id"])
    second = dns.add_record(config, "example.com", RECORDS["TXT"])
    assert second["id"] == first["id"] + 1
    with pytest.raises(apply.NotFound):
        dns.delete_record(config, "example.com", first["id"])
    assert "_dmarc" in zone_text(config)


@pytest.mark.parametrize(
    "record, field",
    [
        ({"name": "x", "type": "A", "value": "1.2.3.4\nevil 60 IN A 6.6.6.6"}, "value"),
        ({"name": "x", "type": "A", "value": "1.2.3.4 ; comment"}, "value"),
        ({"name": "x", "type": "A", "value": "999.1.1.1"}, "value"),
        ({"name": "x", "type": "AAAA", "value": "192.0.2.1"}, "value"),
        ({"name": "x", "type": "MX", "value": "mail."}, "priority"),
        ({"name": "x", "type": "MX", "value": "mail", "priority": 70000}, "priority"),
        ({"name": "x", "type": "SPF", "value": "x"}, "type"),
        ({"name": "x y", "type": "A", "value": "1.2.3.4"}, "name"),
        ({"name": "../x", "type": "A", "value": "1.2.3.4"}, "name"),
        ({"name": "x", "type": "A", "value": "1.2.3.4", "ttl": -1}, "ttl"),
        ({"name": "x", "type": "TXT", "value": "a" * 5000}, "value"),
        ({"name": "x", "type": "CAA", "value": '0 issue "x"\n@ IN NS evil.'}, "value"),
    ],
)
def test_bad_records_refused_before_any_write(agent, record, field):
    """Bad record data names the field and leaves the tree untouched."""
    config, reloads = agent
    before = config_digest(config)
    with pytest.raises(ValidationError) as caught:
        dns.add_record(config, "example.com", record)
    assert caught.value.field == field
    assert config_digest(config) == before


def test_txt_quotes_are_escaped(agent):
    """Quotes and semicolons in TXT data are escaped, not zone-file syntax."""
    config, _ = agent
    dns.add_record(config, "example.com", RECORDS["TXT"])
    assert '_dmarc 3600 IN TXT "v=DMARC1; p=reject; rua=\\"x\\""' in zone_text(config)
