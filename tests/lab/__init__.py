"""Hostfleet's test lab: real Debian 12 servers booted on this machine."""

from tests.lab.lab import Lab, LabError, Node, build_cache, preflight

__all__ = ["Lab", "LabError", "Node", "build_cache", "preflight"]
