"""Named failpoints for the crash tests: off unless HOSTFLEET_FAILPOINTS names them.

HOSTFLEET_FAILPOINTS="dr.after_lock=kill,sync.after_confirm=raise" switches points on; the
actions are `kill` (SIGKILL this process, as a power cut would), `raise` (FailpointHit),
`sleep:<seconds>` and `count` (only counted, so a test can see the point was passed).
In production the variable is unset and a failpoint costs one dict lookup.
"""

from __future__ import annotations

import os
import signal
import time

ENV = "HOSTFLEET_FAILPOINTS"

# Every failpoint in the code, so tests and docs can enumerate them.
POINTS = {
    "dr.before_lock": "the request is marked running and waits for its turn at the list's lock",
    "dr.after_lock": "the list's lock is held, nothing recorded yet",
    "dr.after_desyncs": "the change and a desync for every target are committed, nothing sent",
    "dr.after_some_sent": "the first node answered; the others may or may not have applied",
    "dr.after_confirm": "a node confirmed the new version; its outcome is recorded, its desync not cleared",
    "dr.before_commit": "every answer is recorded; the master still holds the old list",
    "dr.after_commit": "the master holds the new list and cleared the confirmed desyncs; "
    "the operation's final status is not written yet",
    "sync.after_push": "the sync job pushed a list and the node confirmed; the desync is not cleared yet",
    "cert.after_order": "a certificate's order is placed at the CA (the node made its key); nothing is validated",
}

hits: dict[str, int] = {}
_parsed: tuple[str, dict[str, str]] = ("", {})


class FailpointHit(RuntimeError):
    """Raised by a failpoint whose action is `raise`."""


def active() -> dict[str, str]:
    """The failpoints switched on in this process's environment: name → action."""
    global _parsed
    raw = os.environ.get(ENV, "")
    if raw != _parsed[0]:
        table = {}
        for item in raw.split(","):
            name, _, action = item.strip().partition("=")
            if name:
                table[name] = action or "kill"
        _parsed = (raw, table)
    return _parsed[1]


def failpoint(name: str) -> None:
    """Do what the environment says at this named point; nothing when it is not switched on."""
    if name not in POINTS:
        raise KeyError(f"unknown failpoint {name!r}")
    action = active().get(name)
    if action is None:
        return
    hits[name] = hits.get(name, 0) + 1
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "raise":
        raise FailpointHit(name)
    elif action.startswith("sleep:"):
        time.sleep(float(action.split(":", 1)[1]))
