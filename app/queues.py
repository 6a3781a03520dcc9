"""Redis connection and the RQ queues (names as constants, one place)."""

from __future__ import annotations

from flask import current_app
from redis import Redis
from rq import Queue
from rq.job import Job

DEFAULT_QUEUE = "default"
PERIODIC_QUEUE = "periodic"
ALL_QUEUES = (DEFAULT_QUEUE, PERIODIC_QUEUE)

_connections: dict[str, Redis] = {}


def redis_connection(url: str | None = None) -> Redis:
    """A shared Redis connection for the configured URL."""
    url = url or current_app.config["REDIS_URL"]
    if url not in _connections:
        _connections[url] = Redis.from_url(url, socket_connect_timeout=5)
    return _connections[url]


def get_queue(name: str = DEFAULT_QUEUE) -> Queue:
    """The named RQ queue on the configured Redis."""
    return Queue(name, connection=redis_connection())


# Every job the app enqueues, by name → its function's dotted path. Services and views enqueue by
# name, so only app/jobs imports the services it runs (no import cycle between the two layers).
JOBS: dict[str, str] = {
    "check_nodes": "app.jobs.nodes.check_nodes",
    "setup_node": "app.jobs.setup.setup_node",
    "apply_roles": "app.jobs.setup.apply_roles",
    "update_agent": "app.jobs.setup.update_agent",
    "distribute_list_change": "app.jobs.system.distribute_list_change",
    "sync_node": "app.jobs.system.sync_node",
    "sync_round": "app.jobs.system.sync_round",
    "tick": "app.jobs.periodic.tick",
}


def enqueue(job: str, *args, queue: str = DEFAULT_QUEUE, **options) -> Job:
    """Put the job named `job` (a key of JOBS) on a queue with these arguments; RQ's options pass through."""
    return get_queue(queue).enqueue(JOBS[job], *args, **options)
