"""The table of synchronizer runners: every synchronizer has one, and nothing else is in it."""

from app.services.sync_runners import RUNNERS
from app.services.synchronizers import SYNCHRONIZERS


def test_every_synchronizer_has_a_runner():
    assert sorted(RUNNERS) == sorted(SYNCHRONIZERS)
    assert all(callable(runner) for runner in RUNNERS.values())
