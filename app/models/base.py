"""Shared column helpers."""

from datetime import datetime, timezone


def utcnow() -> datetime:
    """The current time in UTC, timezone-aware (stored naive-UTC by SQLite, aware by PostgreSQL)."""
    return datetime.now(timezone.utc)
