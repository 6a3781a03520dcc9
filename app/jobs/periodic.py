"""Periodic jobs, defined as data: `app.cron` enqueues `tick` every second on the periodic queue,
and `tick` runs each task that is due, at most once per interval cluster-wide."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from app.jobs import job
from app.queues import redis_connection
from app.services.certificates import RENEWAL_INTERVAL_S, renew_due
from app.services.collector import collect_stats
from app.services.policies import get_policy
from app.services.sync import SYNC_INTERVAL_S, run_sync


@dataclass(frozen=True)
class PeriodicTask:
    """A task and how to read its interval (seconds) at run time."""

    name: str
    run: Callable[[], object]
    interval_s: Callable[[], float]


PERIODIC_TASKS = (
    PeriodicTask("collect_stats", collect_stats, lambda: get_policy().poll_interval_s),
    PeriodicTask("sync", run_sync, lambda: SYNC_INTERVAL_S),
    PeriodicTask("renew_certificates", renew_due, lambda: RENEWAL_INTERVAL_S),
)


@job
def tick() -> list[str]:
    """Run every periodic task whose interval has passed; returns the names that ran."""
    redis = redis_connection()
    ran = []
    for task in PERIODIC_TASKS:
        interval_ms = max(1, int(task.interval_s() * 1000))
        # A key that lives for one interval: whoever sets it first runs the task this round.
        if redis.set(f"hostfleet:periodic:{task.name}", "1", nx=True, px=interval_ms):
            task.run()
            ran.append(task.name)
    return ran
