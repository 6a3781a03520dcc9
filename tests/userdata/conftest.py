"""The user-data tests use the shared cluster of loopback agents and hosting users (tests/support/agents.py)."""

# The helpers the test modules import from here.
from tests.support.agents import Cluster, basic, seed_account_files, tree_hash  # noqa: F401
