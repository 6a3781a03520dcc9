"""Shared column helpers."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time in UTC, timezone-aware (stored naive-UTC by SQLite, aware by PostgreSQL)."""
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive UTC datetimes; make them aware so they compare with utcnow()."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
