"""The panel's RQ jobs are signed: a job in Redis that the panel did not sign is never run nor unpickled.

Someone who can write to the panel's Redis (customers' code on the master's own server reaches loopback)
puts jobs on its queues: pickled ones (RQ's default serializer), ones signed with another key, a signed
job's data changed, a signed job given a callback. The worker drops each unrun, logs it and goes on.
"""

from __future__ import annotations

import logging
import os
import pickle
import threading
import zlib
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue

from tests.conftest import run_worker_burst

MARKS: list[str] = []


def mark(*args, **kwargs):
    """A callback a forged job names: records that it was called."""
    MARKS.append("called")


class TouchesWhenUnpickled:
    """An object whose unpickling creates a file (what a hostile pickle does, harmlessly)."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


@pytest.fixture
def outsider(redis_url):
    """The default queue as someone without the panel's key writes to it (RQ's pickle)."""
    return Queue("default", connection=Redis.from_url(redis_url))


def panel_queue(app):
    from app.queues import get_queue

    with app.app_context():
        return get_queue()


def test_the_serializer_refuses_what_it_did_not_sign():
    """Pickle, other keys, a changed body or signature, nothing: refused before any parsing."""
    from app.queues import ForgedPayload, SignedJSONSerializer

    mine, theirs = SignedJSONSerializer("a secret"), SignedJSONSerializer("another secret")
    payload = mine.dumps(["app.jobs.system.sync_round", None, [7], {}])
    assert mine.loads(payload) == ["app.jobs.system.sync_round", None, [7], {}]
    prefix, mac, body = payload.split(b".", 2)
    for forged in (pickle.dumps(("os.system", None, ("id",), {})), theirs.dumps([1]), b"", b"hf1.", b"hf1.x.[]",
                   b".".join([prefix, mac, body.replace(b"7", b"8")]),
                   b".".join([prefix, mac.upper(), body]), payload[:-1]):
        with pytest.raises(ForgedPayload):
            mine.loads(forged)
    with pytest.raises(TypeError):
        mine.dumps(object())  # JSON only: nothing that would need pickle on the way back


def test_a_signed_job_runs(app):
    """The panel's own jobs still run, arguments and result through JSON."""
    job = panel_queue(app).enqueue("os.getpid")
    run_worker_burst(app, ("default",))
    assert job.get_status(refresh=True) == "finished"
    assert job.return_value() == os.getpid()


def test_forged_jobs_are_logged_and_dropped_and_the_worker_goes_on(app, outsider, tmp_path, caplog):
    """A pickled job, one signed with another panel's key and a signed job's data with its arguments
    changed are not run and are deleted; the panel's job queued after them runs in the same burst."""
    from app.queues import SignedJSONSerializer

    marker = tmp_path / "pwned"
    pickled = outsider.enqueue("os.system", f"touch {marker}")
    other_key = Queue("default", connection=outsider.connection, serializer=SignedJSONSerializer("not the panel's"))
    resigned = other_key.enqueue("os.system", f"touch {marker}")
    changed = panel_queue(app).enqueue("os.getcwd")
    data = zlib.decompress(outsider.connection.hget(changed.key, "data"))  # RQ keeps a job's data compressed
    assert b'"os.getcwd"' in data
    outsider.connection.hset(changed.key, "data", zlib.compress(data.replace(b'"os.getcwd"', b'"os.getpid"')))
    good = panel_queue(app).enqueue("os.getpid")
    with caplog.at_level(logging.ERROR, logger="hostfleet.jobs"):
        run_worker_burst(app, ("default",))
    assert not marker.exists()
    refused = [r.getMessage() for r in caplog.records if "refused job" in r.getMessage()]
    assert len(refused) == 3, refused
    for job in (pickled, resigned, changed):
        assert any(job.id in line for line in refused)
        assert not outsider.connection.exists(job.key), "a refused job is deleted"
    assert good.get_status(refresh=True) == "finished"
    assert outsider.connection.llen(outsider.key) == 0


@pytest.mark.parametrize("field", ["success_callback_name", "failure_callback_name", "stopped_callback_name"])
def test_a_callback_added_to_a_signed_job_is_refused(app, field):
    """The signature covers a job's data, not the rest of its hash: a callback written next to a signed
    job's data would be called by the worker. The panel sets none, so a job naming one is dropped."""
    MARKS.clear()
    job = panel_queue(app).enqueue("os.getpid")
    job.connection.hset(job.key, field, f"{__name__}.mark")
    run_worker_burst(app, ("default",))
    assert MARKS == []
    assert not job.connection.exists(job.key)


@pytest.mark.parametrize("field, value", [("repeats_left", "5"), ("repeat_intervals", "[0]"), ("retries_left", "5")])
def test_a_signed_job_made_to_repeat_is_refused(app, field, value):
    """Repeats and retries sit beside the signed data in the job's hash: written there, they would run one of
    the panel's own jobs again as often as the writer likes. The panel asks for neither, so such a job is
    dropped without running."""
    MARKS.clear()
    job = panel_queue(app).enqueue(f"{__name__}.mark")
    job.connection.hset(job.key, field, value)
    run_worker_burst(app, ("default",))
    assert MARKS == []
    assert not job.connection.exists(job.key)


def test_a_pickle_put_in_a_signed_jobs_meta_is_refused_unread(app, tmp_path):
    """RQ reads a job's meta with the job's serializer: the panel's refuses a pickle there without loading
    it, and the worker drops the job rather than fail writing that meta back."""
    marker = tmp_path / "pwned"
    job = panel_queue(app).enqueue("os.getpid")
    job.connection.hset(job.key, "meta", pickle.dumps(TouchesWhenUnpickled(marker)))
    run_worker_burst(app, ("default",))
    assert not marker.exists()
    assert not job.connection.exists(job.key)


def test_reading_a_forged_jobs_state_does_not_unpickle_it(app, outsider, tmp_path):
    """The panel reads a queued operation's job (operations.rq_job_state) on its pages and in the sync
    round; RQ's default reader unpickles a job's meta as it loads it."""
    from app.services.operations import rq_job_state

    marker = tmp_path / "pwned"
    job = outsider.enqueue("os.getpid")
    outsider.connection.hset(job.key, "meta", pickle.dumps(TouchesWhenUnpickled(marker)))
    with app.app_context():
        assert rq_job_state(job.id) == "waiting"
    assert not marker.exists()


def test_a_forking_worker_process_drops_a_forged_job(app, outsider, tmp_path):
    """`worker.py default --burst` as deployed (a fork per job): the forged job is dropped in the worker
    itself, before any fork, and the worker exits normally after the panel's job."""
    from tests.system.conftest import spawn_worker

    marker = tmp_path / "pwned"
    outsider.enqueue("os.system", f"touch {marker}")
    good = panel_queue(app).enqueue("os.getpid")
    assert spawn_worker(app, "default", simple=False).wait(120) == 0
    assert not marker.exists()
    assert good.get_status(refresh=True) == "finished"


def test_the_tick_clock_enqueues_signed_ticks(app):
    """`python -m app.cron` (the replacement for `rq cron`, which pickles): its ticks pass the workers' check."""
    from app.cron import run
    from app.queues import PERIODIC_QUEUE, get_queue, why_refused

    stop = threading.Event()
    threading.Timer(0.35, stop.set).start()
    enqueued = run(app.config, stop, interval_s=0.1)
    with app.app_context():
        jobs = get_queue(PERIODIC_QUEUE).get_jobs()
    assert enqueued >= 2 and len(jobs) == enqueued
    assert all(why_refused(job) is None and job.func_name == "app.jobs.periodic.tick" for job in jobs)
    assert all(job.ttl == 5 for job in jobs)
