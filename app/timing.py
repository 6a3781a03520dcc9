"""Server-Timing on every answer: the request's time in the panel and the part spent waiting on agents.

A browser's developer tools show both; scripts and the benchmarks read the master's own share of a
proxied call (total less agent) from them, without the agents' variance.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, g


@contextmanager
def waiting_on_agents() -> Iterator[None]:
    """Count the time inside towards this request's `agent` timing (no-op outside a request)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        if g:
            g.agent_s = g.get("agent_s", 0.0) + time.perf_counter() - start


def init_app(app: Flask) -> None:
    """Stamp each request's start and add the Server-Timing header to its answer."""

    def _started():
        g.started_s = time.perf_counter()

    # Ahead of every other hook, those the extensions registered before this (CSRF, rate limits) too,
    # so the total covers them.
    app.before_request_funcs.setdefault(None, []).insert(0, _started)

    @app.after_request
    def _server_timing(response):
        started = g.get("started_s")
        if started is not None:
            timings = [f"total;dur={(time.perf_counter() - started) * 1000:.2f}"]
            if "agent_s" in g:
                timings.append(f'agent;dur={g.agent_s * 1000:.2f};desc="waiting on node agents"')
            response.headers["Server-Timing"] = ", ".join(timings)
        return response
