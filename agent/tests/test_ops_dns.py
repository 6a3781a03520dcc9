"""Domain names: named-checkzone/named-checkconf accept the zones, serials rise, rollback."""

from __future__ import annotations

import socket
import subprocess
import time

import pytest
from dns import exception as dns_exception
from dns import flags as dns_flags
from dns import message as dns_message
from dns import query as dns_query
from dns import rcode as dns_rcode

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


# Debian bookworm's bind9 layout, with its paths under the private root: named.conf includes the
# options, the admin's named.conf.local and nothing else the tests need.
CACHE_DIR = "var/cache/bind"
OPTIONS = "etc/bind/named.conf.options"
DEBIAN_OPTIONS = """options {
\tdirectory "%(cache)s";
\tdnssec-validation auto;
\tlisten-on-v6 { any; };
};
"""


@pytest.fixture
def debian_bind(tmp_path):
    """A private root laid out as Debian's bind9 package leaves /etc/bind, with its stock options."""
    require_binary("named-checkconf", "named-checkzone")
    config, reloads = make_config(tmp_path)
    etc = config.root / "etc/bind"
    etc.mkdir(parents=True)
    (config.root / CACHE_DIR).mkdir(parents=True)
    (etc / "named.conf").write_text(f'include "{etc}/named.conf.options";\ninclude "{etc}/named.conf.local";\n')
    (etc / "named.conf.options").write_text(DEBIAN_OPTIONS % {"cache": config.root / CACHE_DIR})
    (etc / "named.conf.local").write_text("// Do any local configuration here\n")
    return config, reloads


def effective_options(config) -> str:
    """The options block as named reads it (named-checkconf -p prints it canonically), on one line."""
    conf = config.root / dns.NAMED_CONF
    printed = subprocess.run(["named-checkconf", "-p", str(conf)], capture_output=True, text=True, check=True).stdout
    return " ".join(printed[printed.index("options {"):printed.index("\n};")].split())


def test_bind_on_a_debian_node_is_authoritative_only(debian_bind):
    """The first zone on a node with Debian's bind replaces its stock options (recursion for the local
    network, transfers to anyone, the version on request) with an authoritative-only server's;
    named-checkconf takes the whole configuration, the admin's named.conf.local keeps its lines."""
    config, reloads = debian_bind
    dns.create(config, {"name": "example.com", "owner": "alice", "ip": "192.0.2.1"})
    options = effective_options(config)
    for statement in ("recursion no;", 'allow-recursion { "none"; };', 'allow-query-cache { "none"; };',
                      'allow-transfer { "none"; };', "version none;", "hostname none;", "notify no;"):
        assert statement in options, (statement, options)
    local = (config.root / dns.NAMED_LOCAL).read_text()
    assert local.startswith("// Do any local configuration here\n") and "named.conf.hostfleet" in local
    assert reloads.calls() == ["bind"]
    dns.create(config, {"name": "example.org", "owner": "bob", "ip": "192.0.2.2"})
    assert effective_options(config).count("recursion no;") == 1


def test_apply_config_makes_bind_authoritative_before_the_first_zone(debian_bind):
    """What the dns role's installation and the agent's start run: the options with no zone held;
    run again, it writes and reloads nothing."""
    config, reloads = debian_bind
    dns.apply_config(config)
    assert "recursion no;" in effective_options(config)
    dns.apply_config(config)
    assert reloads.calls() == ["bind"]


def test_private_root_without_bind_gets_no_options(agent):
    """Where bind is not installed (no named.conf) only the include and the zones are written."""
    config, _ = agent
    assert not (config.root / OPTIONS).exists()
    assert "allow-transfer { none; };" in (config.root / dns.INCLUDE).read_text()


@pytest.fixture
def running_named(debian_bind, tmp_path):
    """A real named on a loopback port serving the private root's configuration as the agent wrote it
    for one zone (its pid and session-key files moved into the test's folder, controls off)."""
    require_binary("named")
    config, _ = debian_bind
    dns.create(config, {"name": "example.com", "owner": "alice", "ip": "192.0.2.1",
                            "records": [{"name": "secret-host", "type": "A", "value": "192.0.2.99"}]})
    run = tmp_path / "run"
    run.mkdir()
    options = (config.root / OPTIONS).read_text().replace(
        "options {", f'options {{\n\tpid-file "{run}/named.pid";\n\tsession-keyfile "{run}/session.key";', 1)
    (run / "options.conf").write_text(options)
    (run / "named.conf").write_text(f'include "{run}/options.conf";\ninclude "{config.root / dns.NAMED_LOCAL}";\n'
                                    "controls { };\n")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = open(run / "named.log", "wb")  # noqa: SIM115  (closed at teardown)
    proc = subprocess.Popen(["named", "-g", "-4", "-p", str(port), "-c", str(run / "named.conf")],
                            stdout=log, stderr=subprocess.STDOUT)
    query = dns_message.make_query("example.com", "SOA")
    deadline = time.monotonic() + 20
    while True:
        try:
            dns_query.udp(query, "127.0.0.1", port=port, timeout=0.5)
            break
        except (dns_exception.Timeout, OSError):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                log.close()
                pytest.fail(f"named did not answer: {(run / 'named.log').read_text()[-2000:]}")
            time.sleep(0.2)
    yield port
    proc.terminate()
    proc.wait(10)
    log.close()


def test_named_refuses_transfers_recursion_and_version_queries(running_named):
    """Against a running named: the zone is answered with authority, but an AXFR of it, a recursive
    query for a name it does not hold and the CHAOS version.bind / hostname.bind queries are refused."""
    port = running_named

    def ask(name, rdtype, rdclass="IN", over=dns_query.udp):
        return over(dns_message.make_query(name, rdtype, rdclass), "127.0.0.1", port=port, timeout=5)

    soa = ask("example.com", "SOA")
    assert soa.rcode() == dns_rcode.NOERROR and soa.flags & dns_flags.AA and soa.answer
    axfr = ask("example.com", "AXFR", over=dns_query.tcp)
    assert axfr.rcode() == dns_rcode.REFUSED and not axfr.answer
    assert "secret-host" not in axfr.to_text()
    recursive = ask("www.example.net", "A")
    assert recursive.rcode() == dns_rcode.REFUSED and not recursive.answer
    assert not recursive.flags & dns_flags.RA, "recursion is not offered"
    for name in ("version.bind", "hostname.bind"):
        chaos = ask(name, "TXT", "CH")
        assert not chaos.answer, chaos.to_text()
