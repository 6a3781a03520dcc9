"""app/errors.py: a refusal goes under the form fields it names, the rest to the form's own errors; a
refusal no view catches is the error page with its status (JSON for JSON clients)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import StringField

from agent.validation import ValidationError
from app.errors import show_errors
from app.services.errors import ConflictError, ServiceError


class SiteForm(FlaskForm):
    name = StringField("Name")
    aliases = StringField("Aliases")
    ports = StringField("Ports")


def form_in(app) -> SiteForm:
    with app.test_request_context(method="POST", data={}):
        return SiteForm(meta={"csrf": False})


def test_field_errors_go_under_their_fields_and_the_rest_to_the_form(app):
    form = form_in(app)
    show_errors(form, ServiceError("Invalid input", fields={"aliases[2]": "not a name", "rows[3].ports": "too many",
                                                            "owner": "no such user", "csrf_token": "expired"}))
    assert form.aliases.errors == ["not a name"] and form.ports.errors == ["too many"]
    assert form.form_errors == ["owner: no such user", "csrf_token: expired"] and not form.name.errors


def test_a_refusal_naming_no_field_of_the_form_is_the_forms_error(app):
    form = form_in(app)
    show_errors(form, ConflictError("example.com exists", fields={"owner": "taken"}))
    assert form.form_errors == ["example.com exists"]
    form = form_in(app)
    show_errors(form, ServiceError("the node did not answer"))
    assert form.form_errors == ["the node did not answer"]


def test_a_validator_error_goes_under_its_field(app):
    form = form_in(app)
    show_errors(form, ValidationError("name", "contains a control character"))
    assert form.name.errors == ["contains a control character"] and form.form_errors == []


def test_an_uncaught_refusal_is_the_error_page_or_json(app):
    @app.route("/refuses")
    def refuses():
        raise ConflictError("plan Gold is in use by alice", fields={"name": "in use"})

    page = app.test_client().get("/refuses")
    assert page.status_code == 409 and "plan Gold is in use by alice" in page.text and "<html" in page.text
    answer = app.test_client().get("/refuses", headers={"Accept": "application/json"})
    assert answer.status_code == 409
    assert answer.json == {"error": "plan Gold is in use by alice", "fields": {"name": "in use"}}
