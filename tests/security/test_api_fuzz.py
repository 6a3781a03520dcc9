"""Schemathesis against /api/v1/openapi.json: every operation, as an administrator and as a plain user.

Real loopback agents stand behind the user-data routes. Each operation gets a bounded, derandomized set
of generated requests (the same ones on every run); every answer must be no 5xx, a documented status
code, the documented content type and a body that matches the documented schema.
"""

from __future__ import annotations

import re
import time
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.cluster.fakessh import FakeSSHServer

# Valid-looking requests (positive) and requests that break the schema on purpose (negative), per operation.
EXAMPLES = {GenerationMode.POSITIVE: 6, GenerationMode.NEGATIVE: 3}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def api_routes(app) -> set[str]:
    """Every "METHOD /api/v1/path/{param}" the app serves, from its url_map."""
    labels = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/") and rule.endpoint.startswith("api."):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            labels |= {f"{method} {path}" for method in rule.methods - {"HEAD", "OPTIONS"}}
    return labels


def seed_data(client, actors) -> None:
    """Some of alice's data so generated small ids hit real rows on the nodes (her zones first: her web and mail
    domains need them)."""
    alice = actors.bearer("owner")
    for path, body in (("/api/v1/domains", {"name": "fuzz-site.example.com", "ip": "192.0.2.1"}),
                       ("/api/v1/domains", {"name": "fuzz-mail.example.com", "ip": "192.0.2.1"}),
                       ("/api/v1/webdomains", {"name": "fuzz-site.example.com"}),
                       ("/api/v1/domains", {"name": "fuzz-zone.example.com", "ip": "192.0.2.1"}),
                       ("/api/v1/maildomains", {"name": "fuzz-mail.example.com"}),
                       ("/api/v1/mailboxes", {"address": "box@fuzz-mail.example.com", "password": "a long password"})):
        response = client.post(path, json=body, headers=alice)
        assert response.status_code == 201, (path, response.json)
    response = client.post("/api/v1/firewall", json={"action": "accept", "protocol": "tcp", "ports": "22"},
                           headers=actors.bearer("admin"))
    assert response.status_code == 202, response.json


def fuzz_operation(operation, mode: GenerationMode, headers: dict, failures: list, calls: list) -> None:
    """Run the bounded examples of one operation; record each status code and each failing check."""

    @settings(max_examples=EXAMPLES[mode], derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck), print_blob=False)
    @given(case=operation.as_strategy(mode))
    def run(case):
        response = case.call(headers=headers)
        calls.append(response.status_code)
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (AssertionError, FailureGroup) as exc:
            failures.append(f"{operation.label} ({mode.value}) → {response.status_code}: {str(exc).strip()[:600]}")

    run()


@pytest.mark.timeout(240)
def test_api_fuzz_admin_and_user(app, client, actors, monkeypatch):
    """No 5xx and every answer conforms to the OpenAPI document, for admin and user Bearer tokens."""
    from app.services.setup import ssh

    # Generated node addresses must fail fast instead of waiting for remote SSH servers.
    monkeypatch.setattr(ssh, "SSH_TIMEOUT_S", 0.5)
    # A crash must come back as the 500 a client would see, so every failure of the run is listed.
    app.config["PROPAGATE_EXCEPTIONS"] = False
    sshd = FakeSSHServer()
    try:
        seed_data(client, actors)
        schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
        operations = [result.ok() for result in schema.get_all_operations()]
        assert {op.label for op in operations} == api_routes(app), "an API route is missing from the document"
        failures: list[str] = []
        started, statuses = time.monotonic(), {}
        for who in ("admin", "owner"):
            calls = statuses[who] = []
            for operation in operations:
                for mode in EXAMPLES:
                    fuzz_operation(operation, mode, actors.bearer(who), failures, calls)
        total = sum(map(len, statuses.values()))
        print(f"\nschemathesis: {len(operations)} operations x 2 credentials, {total} calls in "
              f"{time.monotonic() - started:.0f} s, {len(failures)} failures")
        for who, calls in statuses.items():
            print(f"  {who}: " + ", ".join(f"{code}×{n}" for code, n in sorted(Counter(calls).items())))
    finally:
        sshd.close()
    assert failures == [], "\n".join(failures)
