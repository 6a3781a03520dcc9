"""Named failpoints inside the agent for the crash tests: off unless HOSTFLEET_AGENT_FAILPOINTS names them.

The agent's own copy of the master's switch (app/failpoints.py), because nodes run the agent
without the panel: HOSTFLEET_AGENT_FAILPOINTS="apply.after_write=sleep:30". Actions: `kill`
(SIGKILL the agent, as a power cut would) and `sleep:<seconds>` (a pause a test can kill the
agent in). In production the variable is unset and a failpoint costs one environment lookup.
"""

from __future__ import annotations

import os
import signal
import time

ENV = "HOSTFLEET_AGENT_FAILPOINTS"

POINTS = {
    "apply.after_write": "the new files are written and the undo journal saved; not checked or reloaded yet",
}


def failpoint(name: str) -> None:
    """Do what the environment says at this named point; nothing when it is not switched on."""
    if name not in POINTS:
        raise KeyError(f"unknown failpoint {name!r}")
    raw = os.environ.get(ENV)
    if not raw:
        return
    actions = dict(item.strip().partition("=")[::2] for item in raw.split(",") if item.strip())
    action = actions.get(name)
    if action is None:
        return
    if action in ("", "kill"):
        os.kill(os.getpid(), signal.SIGKILL)
    elif action.startswith("sleep:"):
        time.sleep(float(action.split(":", 1)[1]))
