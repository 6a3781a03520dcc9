"""Hostfleet master panel: the Flask application factory."""

from __future__ import annotations

import logging

from flask import Flask
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import NotFound
from werkzeug.routing import IntegerConverter

from app.config import Config


class BoundedJSONProvider(DefaultJSONProvider):
    """Flask's JSON, with a request body nested deeper than Python's recursion limit taken as bad JSON
    (request.get_json answers 400, or None when silent) instead of a RecursionError (500)."""

    def loads(self, s, **kwargs):
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None


def create_app(config: object | None = None) -> Flask:
    """Build the panel: configuration, extensions, blueprints, error pages, CLI."""
    app = Flask(__name__)
    app.json = BoundedJSONProvider(app)
    app.config.from_object(config or Config())
    app.url_map.converters["int"] = DatabaseId
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)

    from app import extensions

    extensions.db.init_app(app)
    extensions.migrate.init_app(app, extensions.db, directory=_migrations_dir(), render_as_batch=True)
    extensions.csrf.init_app(app)
    extensions.login.init_app(app)
    extensions.htmx.init_app(app)
    _tune_sqlite(app)

    from app import auth_hooks, display, errors, menus, proxies, ratelimit, security_headers, timing
    from app import htmx as htmx_helpers
    from app.blueprints import register_blueprints
    from app.cli import register_cli

    timing.init_app(app)  # its start stamp goes ahead of every other hook, the extensions' too
    auth_hooks.init_app(app)
    ratelimit.init_app(app)
    proxies.init_app(app)
    security_headers.init_app(app)
    register_blueprints(app)
    errors.init_app(app)
    htmx_helpers.init_app(app)
    display.init_app(app)
    menus.init_app(app)
    register_cli(app)
    return app


class DatabaseId(IntegerConverter):
    """<int:...> in URLs: an id beyond the id columns (32-bit `integer` on PostgreSQL) is no row (404), never
    a database error."""

    def to_python(self, value: str) -> int:
        from app.models.base import MAX_ID

        number = super().to_python(value)
        if number > MAX_ID:
            raise NotFound(f"No such id: {value}.")
        return number


def _migrations_dir() -> str:
    from pathlib import Path

    return str(Path(__file__).resolve().parent.parent / "migrations")


def _tune_sqlite(app: Flask) -> None:
    """WAL and a busy timeout let the web, worker and cron processes share one SQLite file; every
    commit waits for the disk except those made with extensions.restorable_write."""
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        return
    _private_sqlite_file(app.config["SQLALCHEMY_DATABASE_URI"])
    from sqlalchemy import event

    from app.extensions import SYNC_RELAXED, db

    with app.app_context():

        @event.listens_for(db.engine, "connect")
        def _on_connect(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")  # every commit on disk, unless restorable_write
            cursor.execute("PRAGMA busy_timeout=10000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(db.engine, "checkin")
        def _on_checkin(dbapi_connection, record):
            # After a restorable_write: the connection's next user commits to disk again.
            if record.info.pop(SYNC_RELAXED, False) and dbapi_connection is not None:
                dbapi_connection.execute("PRAGMA synchronous=FULL")


def _private_sqlite_file(uri: str) -> None:
    """The SQLite file holds every node's signing secret: mode 0600 (its WAL and journal take the file's
    mode), in a folder created 0700 when missing; a folder others may write to is reported."""
    import os
    from pathlib import Path

    from sqlalchemy.engine import make_url

    database = make_url(uri).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database).resolve()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.parent.stat().st_mode & 0o022:
        logging.getLogger(__name__).warning("%s (the database's folder) can be written by others: make it 0700",
                                            path.parent)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for file in (path, *(path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal"))):
        if file.exists() and file.stat().st_mode & 0o077:
            file.chmod(0o600)
