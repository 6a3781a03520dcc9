"""Headers on every answer that keep other sites from framing the panel or running code in its pages, and
caches from keeping what a page or an API answer showed.

The pages load their scripts and styles from /static only (no inline script, style or event handler;
htmx's own inline indicator style and eval are off in base.html), so the policy allows nothing else.
"""

from __future__ import annotations

from flask import Flask, Response, request

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def init_app(app: Flask) -> None:
    """Add HEADERS to every answer that does not set them itself."""

    @app.after_request
    def _security_headers(response: Response) -> Response:
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        # Pages and API answers hold a user's data (a new API token once): no cache keeps them. Static
        # files keep the caching Flask gives them.
        if request.endpoint != "static":
            response.headers.setdefault("Cache-Control", "no-store")
        return response
