"""The one place that decides whether a view answers a whole page or a fragment."""

from __future__ import annotations

from flask import Flask, render_template, request

from app.extensions import htmx


def wants_fragment() -> bool:
    """True for an HTMX request that swaps part of a page (not a boosted navigation)."""
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def render(page: str, fragment: str, **context) -> str:
    """Render the fragment for HTMX requests, the full page otherwise (same context)."""
    return render_template(fragment if wants_fragment() else page, **context)


def init_app(app: Flask) -> None:
    """URLs answer pages or fragments by the HX-Request header, so caches must key on it."""

    @app.after_request
    def _vary_on_htmx(response):
        if request.blueprint != "api":
            response.vary.add("HX-Request")
        return response
