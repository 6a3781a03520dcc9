"""System-wide lists: full replace and read-back (PUT/GET /v1/lists/<name>)."""

from __future__ import annotations

import logging
import time

from flask import Blueprint, current_app, jsonify, request

from agent import liststate
from agent.ops import apply, cron, firewall, mail
from agent.validation import ValidationError

log = logging.getLogger("hostfleet.agent.lists")

bp = Blueprint("lists", __name__, url_prefix="/v1/lists")

# Each list's full-replace operation: (config, version, hash, rows) -> held state.
REPLACE = {
    "firewall": lambda config, *args: firewall.replace(
        config, *args, masters=[request.remote_addr or ""]
    ),
    "scheduler": cron.replace,
    "mail_whitelist": lambda config, *args: mail.replace_senders(config, "whitelist", *args),
    "mail_blacklist": lambda config, *args: mail.replace_senders(config, "blacklist", *args),
}

# Each list's rows → files operation, used to tell whether the files still match the recorded list.
APPLY_ROWS = {
    "firewall": firewall.apply_rules,
    "scheduler": cron.apply_entries,
    "mail_whitelist": lambda config, rows: mail.apply_senders(config, "whitelist", rows),
    "mail_blacklist": lambda config, rows: mail.apply_senders(config, "blacklist", rows),
}
DRIFT_HASH = "drift"


def held_lists(config) -> dict[str, dict]:
    """Each list's recorded version and hash; the hash reads "drift" where the live files differ."""
    held = liststate.read_all(config.state_dir)
    for name, state in held.items():
        if name in APPLY_ROWS and apply.drifted(config, name, APPLY_ROWS[name]):
            held[name] = {**state, "hash": DRIFT_HASH}
    return held


def json_errors(blueprint: Blueprint) -> None:
    """Answer the ops' refusals as 4xx JSON {"error", "fields"} on every route of blueprint."""

    @blueprint.errorhandler(ValidationError)
    def invalid(exc: ValidationError):
        return jsonify(error=f"invalid {exc.field}", fields={exc.field: exc.message}), 400

    @blueprint.errorhandler(apply.Conflict)
    def conflict(exc: apply.Conflict):
        return jsonify(error=exc.message, fields={exc.field: exc.message}), 409

    @blueprint.errorhandler(apply.NotFound)
    def not_found(exc: apply.NotFound):
        return jsonify(error=str(exc), fields={}), 404

    @blueprint.errorhandler(apply.OpError)
    def refused(exc: apply.OpError):
        return jsonify(error=exc.message, service=exc.service, fields={}), exc.status


json_errors(bp)


def json_body() -> dict:
    """The request's JSON object, or a 400 naming the body."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ValidationError("body", "must be a JSON object")
    return body


@bp.put("/<name>")
def replace(name: str):
    """Replace a whole list (idempotent); answer the version and hash now held."""
    if name not in REPLACE:
        raise apply.NotFound("list", name)
    body = json_body()
    config = current_app.config["AGENT_CONFIG"]
    started = time.perf_counter()
    held = REPLACE[name](config, body.get("version"), body.get("hash"), body.get("rows"))
    elapsed_ms = (time.perf_counter() - started) * 1000
    log.info("list %s: holds v%s in %.1f ms (validate, render, check, write, reload)",
             name, held.get("version"), elapsed_ms)
    response = jsonify(held)
    # The node's own share of a fan-out (W3C Server-Timing), read by the fan-out benchmarks.
    response.headers["Server-Timing"] = f"apply;dur={elapsed_ms:.1f}"
    return response


@bp.get("/<name>")
def show(name: str):
    """The rows, version and hash of a list as this node holds it."""
    if name not in REPLACE:
        raise apply.NotFound("list", name)
    return jsonify(apply.read_list(current_app.config["AGENT_CONFIG"], name))
