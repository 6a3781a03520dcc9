"""Redis connection and the RQ queues (names as constants, one place)."""

from __future__ import annotations

from flask import current_app
from redis import Redis
from rq import Queue

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
