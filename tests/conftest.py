"""The fixtures every test folder shares, declared here from tests/support: the panel (a real Redis, the app
on a migrated database, clients, accounts), real agents on loopback, the database servers, and the lab.
Declared once at the top of tests/, a session-scoped server (Redis, PostgreSQL, MariaDB) starts at most
once a session however many folders use it."""

from __future__ import annotations

import os
import sys

from tests.support.agents import (  # noqa: F401
    AgentNodes,
    AgentProcess,
    agent_nodes,
    alice,
    cluster,
    hostile_agent,
    local_node,
)
from tests.support.databases import dbc, mariadb, mariadb_server, postgres_cluster, postgres_databases  # noqa: F401
from tests.support.panel import (  # noqa: F401
    Auth,
    Users,
    admin,
    app,
    auth,
    client,
    close_app,
    csrf_from,
    dialect_app,
    fresh_database,
    make_app,
    quick_password_hashes,
    redis_url,
    run_worker_burst,
    runner,
    sqlite_template,
    users,
)
from tests.support.processes import ROOT, free_port, listening_on, redis_server_binary, wait_until  # noqa: F401

# The lab of Debian nodes (fixtures `lab`, `lab_nodes`, marker `lab`) for every test folder.
pytest_plugins = ["tests.lab.fixtures"]


def pytest_report_header(config):
    return [f"hostfleet: python {sys.version.split()[0]}, root={os.geteuid() == 0}, "
            f"database={config.getoption('--db')}"]
