"""Accounts → Users: roles, limits, UID/GID and where each role lives."""
