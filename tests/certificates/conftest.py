"""Fixtures of this menu's page tests: the user-data cluster of tests/userdata."""

from tests.userdata.conftest import alice, cluster  # noqa: F401  (the fixtures, for this folder)
