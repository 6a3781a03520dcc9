"""Flask extensions, created unbound and attached in create_app()."""

from collections.abc import Iterator
from contextlib import contextmanager

from flask_htmx import HTMX
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import CursorResult, Executable, MetaData
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

# Stable constraint names so Alembic migrations are the same on SQLite and PostgreSQL.
naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

db = SQLAlchemy(metadata=MetaData(naming_convention=naming_convention))
migrate = Migrate()
csrf = CSRFProtect()
login = LoginManager()
htmx = HTMX()


@contextmanager
def kept_on_commit() -> Iterator[None]:
    """Commits inside do not expire what the session loaded, so the objects a job or request already
    read are not reloaded one query each on their next use. For code that is the only writer of what
    it loaded, or that only needs the values it read (a rollback still expires everything)."""
    session = db.session()
    previous = session.expire_on_commit
    session.expire_on_commit = False
    try:
        yield
    finally:
        session.expire_on_commit = previous


# Set on a pooled SQLite connection whose next commit does not wait for the disk; the pool puts
# the connection back to synchronous=FULL when it is returned (app/__init__.py, _tune_sqlite).
def conflict_insert(model):
    """An INSERT for the session's database (SQLite or PostgreSQL) that takes `.on_conflict_do_nothing()`."""
    return postgresql_insert(model) if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert(model)


SYNC_RELAXED = "hostfleet_sync_relaxed"


def restorable_write(statement: Executable, params: dict | None = None) -> CursorResult:
    """Run one write and commit it at once; on SQLite without waiting for the disk.

    For writes the nodes can restore: the user-data index follows the agents (docs/user-data.md), and a poll
    settles a claim or confirmation that is missing. In WAL mode with synchronous=NORMAL such a
    commit survives a crash of any panel process; a power cut can lose it (never the database's
    consistency). Every other commit keeps synchronous=FULL.

    When the session has nothing waiting to be written, the write runs on a pooled connection of its
    own: no unit of work, no second round of the session's bookkeeping (a quarter of a create's own
    time went there). Otherwise (and on other databases) it runs in the session and its commit
    carries the session's other changes at full sync.
    """
    session = db.session()
    if db.engine.dialect.name == "sqlite" and not _session_writes(session):
        with db.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA synchronous=NORMAL")  # outside a transaction: the only place it applies
            conn.info[SYNC_RELAXED] = True
            result = conn.execute(statement, params)
            conn.commit()
        return result
    result = session.execute(statement, params)
    session.commit()
    return result


def _session_writes(session) -> bool:
    """True when the session holds changes a commit would write: unflushed objects, or (SQLite begins
    a transaction only at the first write) statements run in an open transaction."""
    if session.new or session.dirty or session.deleted:
        return True
    return session.in_transaction() and session.connection().connection.dbapi_connection.in_transaction
