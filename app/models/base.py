"""Shared column helpers."""

from datetime import UTC, datetime

# The highest id a row can have: id columns are 32-bit `integer` on PostgreSQL (64-bit on SQLite).
MAX_ID = 2**31 - 1


def utcnow() -> datetime:
    """The current time in UTC, timezone-aware (stored naive-UTC by SQLite, aware by PostgreSQL)."""
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """The moment as an aware UTC datetime: SQLite hands back naive UTC ones, PostgreSQL aware ones."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def iso_utc(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with its offset ("2026-01-02T03:04:05.123456+00:00"), the same on every database."""
    return as_utc(moment).isoformat() if moment is not None else None
