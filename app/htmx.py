"""The one place that decides whether a view answers a whole page or a fragment."""

from __future__ import annotations

from flask import Flask, redirect, render_template, request

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


def redirect_to(url: str, hx_status: int = 204, code: int = 302):
    """Send the browser to url: a redirect, or for an HTMX request an empty answer (204, or hx_status)
    with HX-Redirect, so HTMX navigates the whole page instead of swapping the target into a fragment."""
    if htmx:
        return "", hx_status, {"HX-Redirect": url}
    return redirect(url, code)
