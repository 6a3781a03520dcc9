"""Shared column helpers."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time in UTC, timezone-aware (stored naive-UTC by SQLite, aware by PostgreSQL)."""
    return datetime.now(UTC)
