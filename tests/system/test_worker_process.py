"""The job worker as a real process on a real Redis: what a SIGKILLed worker leaves behind."""

from __future__ import annotations

import psutil

from tests.conftest import wait_until
from tests.system.conftest import spawn_worker


def _waiting_for_a_job(redis) -> bool:
    return any(c.get("cmd") == "blmove" for c in redis.client_list())


def test_a_job_submitted_after_a_waiting_worker_was_killed_runs_on_the_next_worker(app):
    """A worker SIGKILLed while it waits for a job leaves no process holding its blocking dequeue, so Redis
    cannot hand the next job to a connection nobody reads: the next worker runs it."""
    from redis import Redis

    from app.queues import get_queue

    redis = Redis.from_url(app.config["REDIS_URL"])
    waiting = spawn_worker(app, "default", burst=False)
    children: list[psutil.Process] = []
    try:
        wait_until(lambda: _waiting_for_a_job(redis), 60, what="the worker to wait for a job")
        children = psutil.Process(waiting.pid).children(recursive=True)
        waiting.kill()
        waiting.wait(10)
        assert [p.pid for p in children if p.is_running()] == [], "a child of the killed worker outlived it"
        wait_until(lambda: not _waiting_for_a_job(redis), 10, what="Redis to drop the killed worker's dequeue")

        with app.app_context():
            job = get_queue().enqueue("os.getpid")
        assert spawn_worker(app, "default").wait(60) == 0
        assert job.get_status(refresh=True) == "finished", "the job went to a connection nobody reads"
    finally:
        if waiting.poll() is None:
            waiting.kill()
        for proc in children:
            if proc.is_running():
                proc.kill()
