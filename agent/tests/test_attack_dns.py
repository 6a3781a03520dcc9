"""A customer's shell against other customers' zones."""

from __future__ import annotations

import os
import stat

import pytest

from agent.ops import dns
from agent.tests.ops_helpers import make_config, require_binary
from agent.tests.test_attack_fs import as_customer


@pytest.mark.skipif(os.geteuid() != 0, reason="plays another customer with setuid: needs root")
def test_another_customers_zone_files_are_not_readable(tmp_path):
    """The zone files were 0644 in a 0755 folder: any customer's shell listed every zone on the DNS node
    and read each whole, the enumeration that refusing zone transfers (AXFR) is meant to prevent: internal
    host names, verification tokens, other customers' domains. Only bind reads them: the folder is
    root:bind 0750."""
    require_binary("named-checkconf", "named-checkzone")
    config, _ = make_config(tmp_path)
    with (config.root / "etc/group").open("a") as group:
        group.write("bind:x:107:\n")
    dns.create(config, {"name": "alice.example", "owner": "alice", "ip": "192.0.2.10",
                        "records": [{"name": "vpn-internal", "type": "A", "value": "192.0.2.99"}]})
    folder = config.root / dns.ZONE_DIR
    assert (folder.stat().st_gid, stat.S_IMODE(folder.stat().st_mode)) == (107, 0o750)

    def bob_reads(bind_fd: int) -> None:
        try:
            fd = os.open("hostfleet/alice.example.zone", os.O_RDONLY, dir_fd=bind_fd)
        except PermissionError:
            return
        os.close(fd)
        raise AssertionError("bob read alice's zone")

    as_customer(folder.parent, bob_reads, uid=1002)
