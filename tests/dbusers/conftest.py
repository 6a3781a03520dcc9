"""Fixtures of this menu's page tests: the databases cluster of tests/databases."""

from tests.databases.conftest import dbc, mariadb, mariadb_server  # noqa: F401  (the fixtures, for this folder)
from tests.userdata.conftest import cluster  # noqa: F401
