"""Disk use per hosting user: what their sites and maildirs take, measured without holding up /v1/stats."""

from __future__ import annotations

from agent import usage
from agent.ops import apply, mail, web
from agent.tests.ops_helpers import make_config


def write(path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)


def holding(tmp_path):
    """alice has a web domain, bob a mail domain; carol has files but no data here."""
    config, _ = make_config(tmp_path)
    apply.save_records(config, web.KIND, [{"name": "a.test", "owner": "alice"}])
    apply.save_records(config, mail.DOMAINS_KIND, [{"name": "m.test", "owner": "bob"}])
    write(config.root / "home/alice/a.test/index.html", 40_000)
    write(config.root / mail.MAIL_DIR / "m.test/info/cur/1.eml", 90_000)
    write(config.root / "home/carol/big.bin", 500_000)
    outside = tmp_path / "outside.bin"
    write(outside, 1_000_000)
    (config.root / "home/alice/a.test/link").symlink_to(outside)
    return config


def test_each_owner_is_charged_for_their_home_and_their_mail_domains(tmp_path):
    """Blocks like du -s; a symlink counts as itself, not its target; files of a user with no data here are
    not reported."""
    config = holding(tmp_path)
    owners = usage.measure(config)
    assert set(owners) == {"alice", "bob"}
    assert 40_000 <= owners["alice"] < 1_000_000
    assert 90_000 <= owners["bob"] < 200_000


def test_stats_report_the_last_measurement_and_never_wait_for_one(tmp_path):
    """The first report has none yet and starts one; the next has it; an old one is measured again."""
    config = holding(tmp_path)
    first = usage.report(config)
    assert first == {"measured_at": None, "owners": {}}
    usage.wait_idle(config)
    second = usage.report(config)
    assert second["owners"] == usage.measure(config) and second["measured_at"] is not None
    write(config.root / "home/alice/a.test/more.bin", 300_000)
    assert usage.report(config)["owners"] == second["owners"], "still the measurement it has"
    later = usage.report(config, now=second["measured_at"] + usage.REFRESH_S + 1)
    assert later["owners"] == second["owners"]
    usage.wait_idle(config)
    assert usage.report(config)["owners"]["alice"] >= second["owners"]["alice"] + 300_000
