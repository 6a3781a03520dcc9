"""A hostile sender against a customer's mailbox quota: what fills the node's disk."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest

from agent import validation as v
from agent.ops import mail
from agent.tests.ops_helpers import make_config, require_binary
from agent.tests.test_attack_fs import as_customer


def test_a_mailbox_quota_limits_what_exim_delivers(tmp_path):
    """quota_mb reaches dovecot only (userdb_quota_rule in the passwd-file), which applies it to IMAP
    APPEND/COPY. Mail arrives through exim's appendfile transport, which writes the maildir itself with
    no `quota` (exim -bP shows it empty): anyone on the internet can keep sending to a 1 MB mailbox until
    /var/mail (often the root file system) is full, for every customer of the node, and the disk-use
    figure charged to the owner grows without limit. The transport as exim parses it must carry a
    quota (the mailbox's, looked up like address_data, with maildir_use_size_file so dovecot agrees)."""
    require_binary("exim", "doveconf")
    config, _ = make_config(tmp_path)
    mail.create_domain(config, {"name": "example.com", "owner": "alice"})
    mail.create_mailbox(config, {"address": "info@example.com", "password": "long enough pw", "quota_mb": 1})
    shown = subprocess.run(["exim", "-C", str(config.root / mail.EXIM_CONF), "-bP", "transport", "hostfleet_maildir"],
                           capture_output=True, text=True, check=True).stdout
    options = dict(line.partition(" = ")[::2] for line in shown.splitlines() if " = " in line)
    assert options.get("quota", "").strip(), "no quota on the delivering transport"
    quotas = config.root / mail.EXIM_DIR / "quotas"
    expand = subprocess.run(["exim", "-C", str(config.root / mail.EXIM_CONF), "-be",
                             f"${{lookup{{info@example.com}}lsearch{{{quotas}}}{{$value}}{{0}}}}"],
                            capture_output=True, text=True, check=True).stdout.strip()
    assert expand == "1M"


@pytest.mark.skipif(os.geteuid() != 0, reason="plays another customer with setuid: needs root")
def test_another_customers_mail_lists_are_not_readable(tmp_path):
    """exim's lists are world-readable (files 0644 in a 0755 folder): bob's shell reads every mailbox
    address on the node (a ready spam list), every customer's private forwarding targets (alice's personal
    address) and the sender lists. Only exim needs them: the folder is root:Debian-exim 0750."""
    require_binary("exim", "doveconf")
    config, _ = make_config(tmp_path)
    with (config.root / "etc/group").open("a") as group:
        group.write("Debian-exim:x:106:\n")
    mail.create_domain(config, {"name": "alice.example", "owner": "alice"})
    mail.create_mailbox(config, {"address": "info@alice.example", "password": "long enough pw",
                                 "forward": ["alice.private@gmail.com"]})
    folder = config.root / mail.EXIM_DIR
    assert (folder.stat().st_gid, stat.S_IMODE(folder.stat().st_mode)) == (106, 0o750)

    def bob_reads(exim_fd: int) -> None:
        try:
            fd = os.open("hostfleet/forwards", os.O_RDONLY, dir_fd=exim_fd)
        except PermissionError:
            return
        os.close(fd)
        raise AssertionError("bob read the forwards file")

    as_customer(folder.parent, bob_reads, uid=1002)


def test_a_rolled_back_mail_change_keeps_the_password_hashes_private(tmp_path):
    """A mail change whose reload fails (dovecot busy, a timeout) is rolled back: fsutil.Snapshot.restore
    writes the previous passwd-file and IMAP key back with atomic_write's default mode, 0644. Every
    customer's shell then reads every mailbox's SHA512-crypt hash (to crack offline) and the node's IMAP
    TLS key, until the next successful mail change. The same restore runs at start after a crash."""
    require_binary("exim", "doveconf")
    config, reloads = make_config(tmp_path)
    mail.create_domain(config, {"name": "alice.example", "owner": "alice"})
    mail.create_mailbox(config, {"address": "info@alice.example", "password": "long enough pw"})
    reloads.fail()
    with pytest.raises(Exception):  # noqa: B017 - the reload's failure, whatever its class
        mail.create_mailbox(config, {"address": "sales@alice.example", "password": "long enough pw"})
    reloads.fail(False)
    modes = {name: stat.S_IMODE((config.root / name).stat().st_mode) for name in (mail.PASSWD, mail.TLS_KEY)}
    assert modes == {mail.PASSWD: 0o600, mail.TLS_KEY: 0o600}


def exim_routes(config, address: str) -> str:
    """`exim -bt` of an address under the rendered config: how exim would route it (or why not)."""
    proc = subprocess.run(["exim", "-C", str(config.root / mail.EXIM_CONF), "-bt", address],
                          capture_output=True, text=True, timeout=120)
    return proc.stdout + proc.stderr


def test_a_hosted_mail_domain_whose_mx_is_not_here_is_not_delivered_here(tmp_path):
    """mallory's mail domain gmail.com with a mailbox: exim treated every hosted domain as local, so every
    mail the node sent or forwarded to gmail.com landed in her mailbox. A hosted domain is local only while
    its MX (or, with none, its own address) is this node or one of the cluster's mail nodes: example.com's
    is not (its MX is the null MX "0 ." where DNS answers; no name resolves here without DNS), and mail
    to it is routed as to any remote domain."""
    require_binary("exim", "doveconf")
    config, _ = make_config(tmp_path)
    mail.create_domain(config, {"name": "example.com", "owner": "alice", "mail_nodes": ["192.0.2.25"]})
    mail.create_mailbox(config, {"address": "victim@example.com", "password": "long enough pw"})
    routed = exim_routes(config, "victim@example.com")
    assert "hostfleet_mailbox" not in routed and "hostfleet_maildir" not in routed, routed
    shown = subprocess.run(["exim", "-C", str(config.root / mail.EXIM_CONF), "-bP", "+local_domains"],
                           capture_output=True, text=True, check=True).stdout
    assert "mxh=$domain" in shown and "mail_nodes" in shown, shown


def test_the_cluster_mail_nodes_are_exims_iplsearch_keys(tmp_path):
    """The master's mail-node addresses land, each once, in the file exim's local_domains reads: IPv6
    quoted (iplsearch), IPv4-mapped as IPv4; anything else is a 400 naming mail_nodes, nothing written."""
    require_binary("exim", "doveconf")
    config, _ = make_config(tmp_path)
    mail.create_domain(config, {"name": "one.example", "owner": "alice",
                                "mail_nodes": ["192.0.2.25", "2001:db8::7", "::ffff:192.0.2.26"]})
    mail.create_domain(config, {"name": "two.example", "owner": "alice", "mail_nodes": ["192.0.2.25"]})
    nodes = config.root / mail.EXIM_DIR / "mail_nodes"
    assert nodes.read_text().splitlines() == ['"2001:db8::7"', "192.0.2.25", "192.0.2.26"]
    for bad in ("192.0.2.25", ["not an address"], ["192.0.2.1\n10.0.0.0/8"], ["1.2.3.4"] * 65):
        with pytest.raises(v.ValidationError) as refused:
            mail.create_domain(config, {"name": "three.example", "owner": "alice", "mail_nodes": bad})
        assert refused.value.field == "mail_nodes"
    assert [d["name"] for d in mail.list_domains(config)] == ["one.example", "two.example"]
