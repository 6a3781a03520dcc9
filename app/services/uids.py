"""The UID/GID range of panel users (docs/user-data.md, "UID/GID and OS accounts"): the accounts the
panel makes on nodes take their numbers from it, and the local node's agent is told it."""

from __future__ import annotations

import os

from flask import current_app

DEFAULT_UID_RANGE = (10000, 59999)


def uid_range() -> tuple[int, int]:
    """The UID/GID range for panel users: HOSTFLEET_UID_RANGE ("10000-59999") or the default."""
    configured = current_app.config.get("HOSTFLEET_UID_RANGE") or os.environ.get("HOSTFLEET_UID_RANGE")
    if configured:
        low, _, high = str(configured).partition("-")
        return int(low), int(high)
    return DEFAULT_UID_RANGE
