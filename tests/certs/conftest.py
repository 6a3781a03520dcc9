"""Fixtures of the certificate tests: the user-data cluster of tests/userdata."""

from tests.userdata.conftest import cluster  # noqa: F401  (the fixture, for this folder)
