"""gunicorn settings for the panel's web process (`make run` passes `--config python:app.gunicorn_conf`)."""

from __future__ import annotations

from agent.heap import freeze_loaded


def post_worker_init(worker) -> None:
    """Once a worker has loaded the app, keep what it loaded out of full garbage collections."""
    count = freeze_loaded()
    worker.log.info("froze %d objects loaded at start (kept out of full garbage collections)", count)
