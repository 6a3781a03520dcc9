"""The API refuses what another site could make a browser send it.

A foreign page can make a browser POST a form (or text) to the API without asking the API first, and
a browser that remembered Basic credentials for the panel would add them. So a POST must carry a JSON
content type or an `X-Requested-With` header (neither can be sent cross-site without a CORS preflight,
which the API never grants), and a state-changing call whose `Origin` is another site's is refused
whatever it carries. PUT, PATCH and DELETE always need a preflight. The API also never answers with a
`WWW-Authenticate` challenge (app/auth_hooks.py), so browsers never hold Basic credentials for it.
"""

from __future__ import annotations

from apispec import BasePlugin
from flask import jsonify, request

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
GUARD_STATUSES = {
    "403": "Refused: the call came from another site's page (its Origin is not this panel's)",
    "415": "Refused: a POST needs Content-Type: application/json (or an X-Requested-With header)",
}


def refuse_cross_site_request():
    """403 for a state-changing call from a foreign Origin, 415 for a POST a plain form could send."""
    if request.method not in STATE_CHANGING:
        return None
    origin = request.headers.get("Origin")
    own = request.host_url.rstrip("/")
    if origin is not None and origin != own:
        response = jsonify(error=f"Cross-site request refused: Origin {origin} is not this panel ({own}).",
                           fields={"Origin": f"must be {own} or absent"})
        response.status_code = 403
        return response
    if request.method == "POST" and not request.is_json and not request.headers.get("X-Requested-With"):
        response = jsonify(
            error="A POST to the API needs Content-Type: application/json (send {} when there is nothing to "
                  "say) or an X-Requested-With header.",
            fields={"Content-Type": "must be application/json"},
        )
        response.status_code = 415
        return response
    return None


class CrossSiteGuardPlugin(BasePlugin):
    """Documents the guard's answers on every state-changing operation of the OpenAPI document."""

    def operation_helper(self, path=None, operations=None, **kwargs):
        for method, operation in (operations or {}).items():
            if method.upper() not in STATE_CHANGING:
                continue
            responses = operation.setdefault("responses", {})
            for status, description in GUARD_STATUSES.items():
                if status == "415" and method.upper() != "POST":
                    continue
                responses.setdefault(status, {
                    "description": description,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ApiError"}}},
                })
