"""Sending a whole system-wide list to one node's agent, and what its answer means."""

from __future__ import annotations

from flask import current_app

from agent.client import AgentClient, AgentError
from app.models import NodeOutcome


def push_timeout() -> float:
    """Seconds a node has to apply a full list and answer."""
    return float(current_app.config.get("LIST_PUSH_TIMEOUT_S", 30))


def describe_error(exc: AgentError) -> str:
    """An agent error with the fields it named (the agent says which row and field it refused)."""
    fields = exc.payload.get("fields") if isinstance(exc.payload, dict) else None
    if fields:
        return f"{exc}; " + "; ".join(f"{k}: {v}" for k, v in fields.items())
    return str(exc)


def classify(exc: AgentError) -> NodeOutcome:
    """No answer is `unavailable`; an answer that refused is `failed`."""
    return NodeOutcome.UNAVAILABLE if exc.kind in ("unreachable", "timeout") else NodeOutcome.FAILED


def confirms(payload: object, version: int, content_hash: str) -> bool:
    """Whether an agent's answer says it holds exactly this version and hash."""
    return isinstance(payload, dict) and payload.get("version") == version and payload.get("hash") == content_hash


def push_list(client: AgentClient, name: str, body: dict,
              encoded: bytes | None = None) -> tuple[NodeOutcome, str | None, str | None]:
    """Send a full list to one agent: (outcome, error, error kind); never raises.

    `encoded` is body already JSON-encoded, so a fan-out encodes one change once, not per node.
    """
    try:
        _, payload = client.put(f"/v1/lists/{name}", json=body, body=encoded)
    except AgentError as exc:
        # A signature or TLS refusal, or a 4xx, means the agent did not apply anything.
        refused = exc.kind in ("auth", "tls") or (exc.kind == "http" and (exc.status or 500) < 500)
        return classify(exc), describe_error(exc), "refused" if refused else exc.kind
    if confirms(payload, body["version"], body["hash"]):
        return NodeOutcome.APPLIED, None, None
    held = payload if isinstance(payload, dict) else {}
    return (
        NodeOutcome.FAILED,
        f"the agent answered version {held.get('version')!r}, hash {str(held.get('hash'))[:12]}…; "
        f"expected version {body['version']}",
        "mismatch",
    )
