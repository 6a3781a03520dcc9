"""Redis connection, the RQ queues (names as constants, one place) and the panel's signed jobs.

Every job the panel puts in Redis is JSON signed with HMAC-SHA256 under a key only the panel holds
(docs/security.md, "The panel's Redis"). A worker runs a job only when its signature holds, so a
process that can write to Redis but does not hold the key cannot make a worker run anything, and no
job is ever unpickled.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any

from flask import current_app
from redis import Redis
from rq import Queue, Worker
from rq.exceptions import DeserializationError
from rq.job import Job
from rq.worker import SimpleWorker

DEFAULT_QUEUE = "default"
PERIODIC_QUEUE = "periodic"
ALL_QUEUES = (DEFAULT_QUEUE, PERIODIC_QUEUE)

log = logging.getLogger("hostfleet.jobs")

_connections: dict[str, Redis] = {}
_serializers: dict[str, SignedJSONSerializer] = {}


class ForgedPayload(ValueError):
    """A payload in Redis that this panel did not sign."""


class SignedJSONSerializer:
    """RQ's serializer for the panel: `hf1.<hex HMAC-SHA256>.<JSON>`; `loads` checks the MAC before it
    parses anything, and parses JSON only."""

    PREFIX = b"hf1."

    def __init__(self, secret: str):
        # A key of its own, derived from the secret: a job's MAC is never a valid session signature.
        self._key = hmac.new(secret.encode(), b"hostfleet rq job signing", hashlib.sha256).digest()
        # RQ's Worker records its serializer's import path from this (an instance has none of its own).
        self.__qualname__ = type(self).__qualname__

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).hexdigest().encode()

    def dumps(self, obj: Any) -> bytes:
        body = json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()
        return self.PREFIX + self._mac(body) + b"." + body

    def loads(self, data: bytes | str) -> Any:
        if isinstance(data, str):
            data = data.encode()
        if not isinstance(data, bytes) or not data.startswith(self.PREFIX):
            raise ForgedPayload("not a payload signed by this panel")
        mac, dot, body = data[len(self.PREFIX):].partition(b".")
        if not dot or not hmac.compare_digest(mac, self._mac(body)):
            raise ForgedPayload("wrong signature")
        return json.loads(body)


def job_signing_secret(config) -> str:
    """`JOB_SIGNING_KEY` when set, else the panel's `SECRET_KEY` (a key is derived from it)."""
    return config.get("JOB_SIGNING_KEY") or config["SECRET_KEY"]


def job_serializer(config=None) -> SignedJSONSerializer:
    """The serializer every queue, worker and job fetch of this panel uses."""
    secret = job_signing_secret(config if config is not None else current_app.config)
    if secret not in _serializers:
        _serializers[secret] = SignedJSONSerializer(secret)
    return _serializers[secret]


def redis_connection(url: str | None = None) -> Redis:
    """A shared Redis connection for the configured URL."""
    url = url or current_app.config["REDIS_URL"]
    if url not in _connections:
        _connections[url] = Redis.from_url(url, socket_connect_timeout=5)
    return _connections[url]


def get_queue(name: str = DEFAULT_QUEUE, config=None) -> Queue:
    """The named RQ queue on the configured Redis, with signed jobs."""
    config = config if config is not None else current_app.config
    return Queue(name, connection=redis_connection(config["REDIS_URL"]), serializer=job_serializer(config))


def fetch_job(job_id: str) -> Job:
    """A job by id, read with the panel's serializer (never unpickled); NoSuchJobError when gone."""
    return Job.fetch(job_id, connection=redis_connection(), serializer=job_serializer())


# Fields of a job hash that make RQ call a function or a URL besides the job's own; the panel sets none.
_HOOK_FIELDS = ("_success_callback_name", "_failure_callback_name", "_stopped_callback_name")


def why_refused(job: Job) -> str | None:
    """Why a worker must not run this job (it was not put in Redis by this panel), or None."""
    try:
        job.func_name  # noqa: B018 - reading it checks the signature of the job's data
    except DeserializationError as exc:
        return str(exc.__cause__ or exc) or "unreadable data"
    if job.meta.keys() == {"unserialized"}:
        # What RQ keeps of a meta its serializer refused; the worker would fail writing it back.
        return "its meta is not signed by this panel"
    if any(getattr(job, name, None) for name in _HOOK_FIELDS) or job.webhooks:
        return "it names callbacks or webhooks"
    if job._dependency_ids:
        return "it names dependencies"
    if job.repeats_left or job.repeat_intervals or job.retries_left:
        # Outside the signed data too: a signed job of the panel's would be run again and again.
        return "it asks to be repeated or retried"
    return None


class RefusesForgedJobs:
    """A worker that drops, without running anything of it, a job that is not the panel's."""

    def execute_job(self, job: Job, queue: Queue):
        reason = why_refused(job)
        if reason is None:
            return super().execute_job(job, queue)
        log.error("refused job %s on queue %s: %s; it was not run and is deleted", job.id, queue.name, reason)
        with self.connection.pipeline() as pipe:
            pipe.lrem(queue.key, 0, job.id)
            pipe.lrem(queue.intermediate_queue_key, 0, job.id)
            pipe.delete(job.key)
            pipe.execute()
        return None


class PanelWorker(RefusesForgedJobs, Worker):
    """A forking worker for the panel's signed jobs."""


class PanelSimpleWorker(RefusesForgedJobs, SimpleWorker):
    """An in-process worker for the panel's signed jobs."""


def make_worker(queues, config=None, *, simple: bool = True, name: str | None = None) -> Worker:
    """A worker for the named queues on the configured Redis, reading jobs with the panel's serializer."""
    config = config if config is not None else current_app.config
    worker_class = PanelSimpleWorker if simple else PanelWorker
    return worker_class(list(queues), connection=redis_connection(config["REDIS_URL"]), name=name,
                        serializer=job_serializer(config))


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
    "issue_certificate": "app.jobs.certificates.issue_certificate",
}


def enqueue(job: str, *args, queue: str = DEFAULT_QUEUE, **options) -> Job:
    """Put the job named `job` (a key of JOBS) on a queue with these arguments; RQ's options pass through."""
    return get_queue(queue).enqueue(JOBS[job], *args, **options)
