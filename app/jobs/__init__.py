"""RQ job functions: they take ids, run inside the app context and call a service."""

from __future__ import annotations

import functools
import logging

from flask import Flask

from app import create_app
from app.extensions import db

_app: Flask | None = None


def get_app() -> Flask:
    """The app the jobs run in, built once per worker process from the environment."""
    global _app
    if _app is None:
        _app = create_app()
    return _app


def use_app(app: Flask) -> None:
    """Run jobs in this app (the tests' app, or the worker's own)."""
    global _app
    _app = app


def job(func):
    """Run an RQ job function inside the app context, with a logger stamped with its name."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with get_app().app_context():
            try:
                return func(*args, **kwargs)
            finally:
                db.session.remove()

    wrapper.log = logging.getLogger(f"hostfleet.jobs.{func.__name__}")
    return wrapper
