"""Scheduler list: /etc/cron.d/hostfleet rendering, validation, rollback, idempotence."""

from __future__ import annotations

import pytest

from agent.ops import apply, cron
from agent.tests.ops_helpers import config_digest, envelope, make_config
from agent.validation import ValidationError

ENTRIES = [
    {"id": 1, "schedule": "*/5 * * * *", "user": "root", "command": "/usr/bin/true",
     "comment": "keepalive", "enabled": True},
    {"id": 2, "schedule": "@daily", "user": "alice", "command": "date +%s >> /tmp/x",
     "comment": "", "enabled": True},
    {"id": 3, "schedule": "0 3 * * 1-5", "user": "bob", "command": "backup --all",
     "comment": "weekday backup", "enabled": False},
]


@pytest.fixture
def agent(tmp_path):
    """A config under a private root with recorded reloads."""
    return make_config(tmp_path)


def test_render_and_check(agent):
    """Entries render into a cron.d file the cron-line checker accepts; % is escaped."""
    config, reloads = agent
    result = cron.replace(config, *envelope(ENTRIES))
    assert result["changed"] is True
    text = (config.root / cron.CRON_FILE).read_text()
    assert "*/5 * * * * root /usr/bin/true" in text
    assert "@daily alice date +\\%s >> /tmp/x" in text
    assert "#0 3 * * 1-5 bob backup --all" in text
    cron.check_cron_file(config.root / cron.CRON_FILE)
    assert reloads.calls() == ["cron"]


def test_same_request_twice_changes_nothing(agent):
    """A repeated replace writes nothing and reloads nothing."""
    config, reloads = agent
    cron.replace(config, *envelope(ENTRIES))
    before = config_digest(config)
    assert cron.replace(config, *envelope(ENTRIES))["changed"] is False
    assert config_digest(config) == before
    assert reloads.calls() == ["cron"]


@pytest.mark.parametrize(
    "change, field",
    [
        ({"schedule": "61 * * * *"}, "rows[0].schedule"),
        ({"schedule": "* * * * * *"}, "rows[0].schedule"),
        ({"schedule": "*/5 * * *"}, "rows[0].schedule"),
        ({"user": "mallory"}, "rows[0].user"),
        ({"user": "root\nx"}, "rows[0].user"),
        ({"command": "true\n* * * * * root rm -rf /"}, "rows[0].command"),
        ({"command": "true\x00"}, "rows[0].command"),
        ({"command": ""}, "rows[0].command"),
        ({"enabled": "yes"}, "rows[0].enabled"),
        ({"comment": "x\ny"}, "rows[0].comment"),
        ({"id": "1"}, "rows[0].id"),
    ],
)
def test_bad_entries_are_refused_before_any_write(agent, change, field):
    """Each bad value names its row and field, and nothing is written."""
    config, reloads = agent
    before = config_digest(config)
    with pytest.raises(ValidationError) as caught:
        cron.replace(config, *envelope([{**ENTRIES[0], **change}]))
    assert caught.value.field == field
    assert config_digest(config) == before
    assert reloads.calls() == []


def test_broken_template_is_caught_and_old_file_back(agent, monkeypatch):
    """A rendering the checker refuses returns its message and restores the previous file."""
    config, reloads = agent
    cron.replace(config, *envelope(ENTRIES[:1]))
    previous = (config.root / cron.CRON_FILE).read_bytes()
    monkeypatch.setattr(cron, "render", lambda entries: b"*/5 * * * *\n")
    with pytest.raises(apply.CheckFailed, match="expected a user and a command"):
        cron.replace(config, *envelope(ENTRIES, version=2))
    assert (config.root / cron.CRON_FILE).read_bytes() == previous
    assert apply.read_list(config, "scheduler")["version"] == 1


def test_reload_failure_restores_and_reloads_again(agent):
    """A failed reload puts the old file back and reloads it."""
    config, reloads = agent
    cron.replace(config, *envelope(ENTRIES[:1]))
    previous = (config.root / cron.CRON_FILE).read_bytes()
    reloads.fail()
    with pytest.raises(apply.ReloadFailed):
        cron.replace(config, *envelope(ENTRIES, version=2))
    assert (config.root / cron.CRON_FILE).read_bytes() == previous
    assert reloads.calls() == ["cron", "cron", "cron"]


def test_read_back(agent):
    """GET of the list returns the rows, version and hash that were applied."""
    config, _ = agent
    version, content_hash, rows = envelope(ENTRIES, version=7)
    cron.replace(config, version, content_hash, rows)
    held = apply.read_list(config, "scheduler")
    assert held == {"name": "scheduler", "version": 7, "hash": content_hash, "rows": ENTRIES}
