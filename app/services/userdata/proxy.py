"""Talking to the node that holds the data: one signed call, its failures as clear errors, and a
change sent under a pending mark."""

from __future__ import annotations

from flask import current_app

from agent.client import AgentError
from app.extensions import db
from app.models import Node, NodeState
from app.services import nodes as node_service
from app.services.userdata.errors import UserDataError
from app.services.userdata.index import begin_write, drop_mark
from app.timing import waiting_on_agents


def require_ready(node: Node, what: str) -> None:
    """Refuse before anything is sent when the holding node is not ready."""
    if node.state != NodeState.READY.value:
        detail = f" (last poll: {node.last_poll_error})" if node.last_poll_error else ""
        raise UserDataError(
            503,
            f"Node {node.name} holds {what} and is {node.state}, not ready{detail}; nothing was changed. "
            "Try again once the node is ready.",
        )


def call_agent(node: Node, method: str, path: str, body: object = None, *, what: str) -> object:
    """One signed call to the node's agent; its refusals come back as UserDataError."""
    require_ready(node, what)
    client = node_service.agent_client(node, current_app.config["AGENT_TIMEOUT_S"])
    try:
        with waiting_on_agents():
            return client.request(method, path, json=body)[1]
    except AgentError as exc:
        raise agent_failure(node, exc, what, method) from None


def agent_failure(node: Node, exc: AgentError, what: str, method: str = "GET") -> UserDataError:
    """An agent's answer or a transport failure as a clear error naming the node. 504 means the outcome
    is unknown (a change may have been applied, also when its answer was refused as too large or too
    slow); the callers keep their claim or mark for the poll."""
    payload = exc.payload if isinstance(exc.payload, dict) else {}
    if exc.kind == "http" and exc.status is not None and exc.status < 500 and exc.status != 422:
        return UserDataError(exc.status, payload.get("error") or str(exc), payload.get("fields") or {})
    if exc.kind == "http" and exc.status == 422:
        # The service's own checker (nginx -t, named-checkzone...) refused the result; the node rolled back.
        return UserDataError(422, f"Node {node.name} refused the change for {what}: {payload.get('error') or exc}; "
                                  "nothing was changed.", payload.get("fields") or {})
    if exc.kind == "http":
        return UserDataError(502, f"Node {node.name} refused the change for {what}: "
                                  f"{payload.get('error') or exc}; nothing was changed.")
    if exc.kind == "answer" and method != "GET":
        return UserDataError(504, f"Node {node.name}'s answer to the change for {what} was refused ({exc}); the "
                                  "change may have been applied there: the index is reconciled from the node at "
                                  "its next poll.")
    if exc.kind == "answer":
        return UserDataError(502, f"Node {node.name}'s answer for {what} was refused ({exc}).")
    if exc.kind == "timeout":
        return UserDataError(504, f"Node {node.name} did not answer in time for {what} ({exc}); the change may "
                                  "have been applied there: the index is reconciled from the node at its next poll.")
    if exc.sent and method != "GET":
        return UserDataError(504, f"Node {node.name}: the connection broke after the change for {what} was sent "
                                  f"({exc}); it may have been applied there: the index is reconciled from the node "
                                  "at its next poll.")
    return UserDataError(503, f"Node {node.name} is not reachable for {what} ({exc.kind}: {exc}); "
                              "nothing was changed.")


def send_change(node: Node, kind: str, name: str, method: str, path: str, body: object, what: str):
    """Send one change under a pending mark; the mark stays only when the outcome is unknown."""
    mark_id = begin_write(node, kind, name)
    try:
        return call_agent(node, method, path, body, what=what), mark_id
    except UserDataError as exc:
        if not exc.maybe_applied:
            drop_mark(mark_id)
            db.session.commit()
        raise
