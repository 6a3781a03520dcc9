"""Domains → Web domains and Domain names (proxied to the node holding the owner's role)."""
