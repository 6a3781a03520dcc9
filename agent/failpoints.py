"""Named failpoints inside the agent for the crash tests: off unless HOSTFLEET_AGENT_FAILPOINTS names them.

The agent's own copy of the master's switch (app/failpoints.py), because nodes run the agent
without the panel: HOSTFLEET_AGENT_FAILPOINTS="apply.after_write=sleep:30". Actions: `kill`
(SIGKILL the agent, as a power cut would) and `sleep:<seconds>` (a pause a test can kill the
agent in). In production the variable is unset and a failpoint costs one environment lookup.

In-process tests can also arm a point with a function (`armed`): it is called at the point with
what the code there hands it (for a race: the open folder and the name just made), so a test can
change the filesystem exactly between two steps instead of hoping a thread lands there.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator

ENV = "HOSTFLEET_AGENT_FAILPOINTS"

POINTS = {
    "apply.after_write": "the new files are written and the undo journal saved; not checked or reloaded yet",
    "homefs.after_mkdir": "a folder was just made in a customer's tree (parent_fd, entry); not opened or owned yet",
}

_armed: dict[str, Callable[..., None]] = {}


@contextlib.contextmanager
def armed(name: str, action: Callable[..., None]) -> Iterator[None]:
    """Call action(**context) each time this process passes the named point, while the block runs."""
    if name not in POINTS:
        raise KeyError(f"unknown failpoint {name!r}")
    _armed[name] = action
    try:
        yield
    finally:
        _armed.pop(name, None)


def failpoint(name: str, **context: object) -> None:
    """Do what the environment says at this named point; nothing when it is not switched on."""
    if name not in POINTS:
        raise KeyError(f"unknown failpoint {name!r}")
    hook = _armed.get(name)
    if hook is not None:
        hook(**context)
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
