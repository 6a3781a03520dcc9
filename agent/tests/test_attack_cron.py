"""A customer's shell against the administrator's scheduler."""

from __future__ import annotations

import stat

from agent.ops import cron
from agent.tests.ops_helpers import envelope, make_config


def test_the_schedulers_commands_are_not_readable_by_customers(tmp_path):
    """/etc/cron.d/hostfleet was written 0644: every customer's shell read the administrator's job lines,
    where backup and sync commands carry passwords and tokens. cron (root) is its only reader: 0600."""
    config, _ = make_config(tmp_path)
    rows = [{"id": 1, "schedule": "@daily", "user": "root",
             "command": "mysqldump --password=s3cret --all-databases > /backup/all.sql"}]
    cron.replace(config, *envelope(rows))
    mode = stat.S_IMODE((config.root / cron.CRON_FILE).stat().st_mode)
    assert mode & 0o077 == 0, oct(mode)
