"""Databases → Database users (proxied to the node holding the owner's db role)."""
