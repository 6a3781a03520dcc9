"""Error pages and JSON errors: clear messages, never a bare 500 page."""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException


def wants_json() -> bool:
    """API routes and JSON clients get JSON errors."""
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def init_app(app: Flask) -> None:
    """Register the error handlers."""

    @app.errorhandler(CSRFError)
    def _csrf(error: CSRFError):
        message = "The form expired or did not come from this panel; reload the page and try again."
        if wants_json():
            return jsonify(error=message, fields={"csrf_token": error.description}), 400
        return render_template("errors/error.html", code=400, message=message), 400

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException):
        # Headers the error carries besides its own body's (Retry-After of a 429, Allow of a 405).
        headers = [(k, v) for k, v in error.get_headers() if k != "Content-Type"]
        if wants_json():
            payload = getattr(error, "data", None) or {}
            body = {"error": error.description or error.name}
            messages = payload.get("messages") if isinstance(payload, dict) else None
            if messages:
                body["fields"] = _flatten_fields(messages)
                body["error"] = "Invalid input: " + ", ".join(sorted(body["fields"]))
            return jsonify(body), error.code, headers
        return render_template("errors/error.html", code=error.code, message=error.description), error.code, headers


def _flatten_fields(messages: dict) -> dict[str, str]:
    """webargs' {location: {field: [msgs]}} → {field: "msg; msg"}."""
    fields: dict[str, str] = {}
    for location_errors in messages.values():
        if not isinstance(location_errors, dict):
            continue
        for field, errors in location_errors.items():
            if isinstance(errors, dict):
                errors = [f"{k}: {v}" for k, v in errors.items()]
            fields[str(field)] = "; ".join(str(e) for e in errors) if isinstance(errors, list) else str(errors)
    return fields
