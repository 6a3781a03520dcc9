"""Error pages and JSON errors: clear messages, never a bare 500 page."""

from __future__ import annotations

from flask import Flask, flash, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException

from agent.validation import WHOLE_NUMBER, ValidationError
from app.extensions import db
from app.htmx import redirect_to
from app.services.errors import ServiceError

# How long a client is asked to wait when the database cannot be reached (a restart takes seconds).
DATABASE_RETRY_AFTER_S = 5
# SQLSTATEs that say the server went away or cannot take the connection, not that the statement is wrong:
# connection exceptions (08), shut down or still starting (57P01-57P03), too many connections (53300).
UNREACHABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300")


def wants_json() -> bool:
    """API routes and JSON clients get JSON errors."""
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def database_unreachable(error: DBAPIError) -> bool:
    """True when the database server could not be reached or went away in the middle (a restart, a
    failover), as opposed to an error about the statement or the data."""
    if error.connection_invalidated:
        return True
    if not isinstance(error, OperationalError):
        return False  # e.g. a DataError: psycopg refuses a NUL byte before sending, with no sqlstate either
    # psycopg sets sqlstate (None when the server never answered); sqlite3's errors have none.
    sqlstate = getattr(error.orig, "sqlstate", False)
    return sqlstate is None or (isinstance(sqlstate, str) and sqlstate.startswith(UNREACHABLE_SQLSTATES))


def show_errors(form, error: ServiceError | ValidationError) -> None:
    """Put a refusal under the form fields it names, to re-render the form with.

    A form may map an error's field name to one of its fields with `field_for(name)`; otherwise the
    field is found by the name, its head (`aliases` of `aliases[2]`, `limits` of `limits.web`) or its
    tail (`ports` of `rows[3].ports`). Names no field takes go to the form's own errors."""
    if isinstance(error, ValidationError):
        fields, message = {error.field: error.message}, f"{error.field}: {error.message}"
    else:
        fields, message = error.fields, error.message
    unplaced = []
    for name, why in fields.items():
        field = _field_for(form, name)
        if field is None:
            unplaced.append(f"{name}: {why}")
        else:
            field.errors = [*list(field.errors or []), why]
    if len(unplaced) == len(fields):
        form.form_errors.append(message)
    else:
        form.form_errors.extend(unplaced)


def _field_for(form, name: str):
    if name == "csrf_token":
        return None
    if hasattr(form, "field_for"):
        return form.field_for(name)
    head = name.split(".")[0].split("[")[0]
    tail = name.split(".")[-1].split("[")[0]
    for candidate in (name, head, tail):
        field = form._fields.get(candidate)
        if field is not None and candidate != "csrf_token":
            return field
    return None


def refused(error: ServiceError, back: str | None = None):
    """A page's answer to a refusal no form shows: data the caller may not see is a 404; otherwise the
    message is flashed and the browser sent to `back` (HX-Redirect for HTMX), or without `back` the error
    page with the refusal's status."""
    if error.status == 404 or back is None:
        return render_template("errors/error.html", code=error.status, message=error.message), error.status
    flash(error.message)
    return redirect_to(back, code=303)


def init_app(app: Flask) -> None:
    """Register the error handlers."""

    @app.errorhandler(ServiceError)
    def _refused(error: ServiceError):
        # A refusal a page did not catch; the API's blueprint answers its own in the {"error", "fields"} shape.
        if wants_json():
            return jsonify(error=error.message, fields=error.fields), error.status
        return refused(error)

    @app.errorhandler(CSRFError)
    def _csrf(error: CSRFError):
        message = "The form expired or did not come from this panel; reload the page and try again."
        if wants_json():
            return jsonify(error=message, fields={"csrf_token": error.description}), 400
        return render_template("errors/error.html", code=400, message=message), 400

    @app.errorhandler(DBAPIError)
    def _database(error: DBAPIError):
        # Anything else is a bug, for the default handling (a logged 500; raised in tests).
        if not database_unreachable(error):
            raise error
        app.logger.warning("database unreachable during %s %s: %s", request.method, request.path, error.orig)
        try:
            db.session.rollback()
        except DBAPIError:
            pass  # the connection is gone; the pool replaces it
        message = "The database is not reachable right now (restarting?). Try again in a few seconds."
        headers = {"Retry-After": str(DATABASE_RETRY_AFTER_S)}
        if wants_json():
            return jsonify(error=message), 503, headers
        page = render_template("errors/unavailable.html", message=message, retry_after=DATABASE_RETRY_AFTER_S)
        return page, 503, headers

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


# marshmallow's messages for a value of the wrong type, in the words the services use for the same mistake.
PARSER_WORDS = {
    "Not a valid integer.": WHOLE_NUMBER,
    "Not a valid number.": "must be a number, like 10",
    "Not a valid string.": "must be text (in quotes)",
    "Not a valid boolean.": "must be true or false",
    "Not a valid list.": "must be a list, like [\"a\", \"b\"]",
    "Not a valid mapping type.": "must be an object, like {\"key\": \"value\"}",
    "Field may not be null.": "must have a value (not null)",
    "Unknown field.": "unknown field",
    "Missing data for required field.": "required",
}


def _in_words(message: str) -> str:
    """A parser's message as the services word the same mistake (unknown messages as they are)."""
    return PARSER_WORDS.get(message, message)


def _flatten_fields(messages: dict) -> dict[str, str]:
    """webargs' {location: {field: [msgs]}} → {field: "msg; msg"}, in the services' words."""
    fields: dict[str, str] = {}
    for location_errors in messages.values():
        if not isinstance(location_errors, dict):
            continue
        for field, errors in location_errors.items():
            if isinstance(errors, dict):
                errors = [f"{k}: {_in_words(v[0]) if isinstance(v, list) and len(v) == 1 else v}"
                          for k, v in errors.items()]
            fields[str(field)] = "; ".join(_in_words(str(e)) for e in errors) if isinstance(errors, list) \
                else _in_words(str(errors))
    return fields
