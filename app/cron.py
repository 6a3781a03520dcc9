"""The periodic tick's clock: `python -m app.cron` enqueues `tick` on the periodic queue every second.

Not `rq cron`: it enqueues with RQ's default serializer (pickle), and the panel's workers run only jobs
signed with the panel's key (app/queues.py). The tick itself decides which periodic task is due
(app/jobs/periodic.py). It reads REDIS_URL and the secret from the environment and the data dir, as
every panel process does, never from its command line (which any local user can read).
"""

from __future__ import annotations

import logging
import signal
import threading
import time

from redis.exceptions import RedisError

from app.jobs.periodic import tick
from app.queues import PERIODIC_QUEUE, get_queue

TICK_INTERVAL_S = 1.0
# A short ttl drops ticks that could not run in time instead of piling them up.
TICK_TTL_S = 5

log = logging.getLogger("hostfleet.cron")


def run(config, stop: threading.Event, interval_s: float = TICK_INTERVAL_S) -> int:
    """Enqueue a tick every interval until `stop` is set; returns how many were enqueued."""
    queue = get_queue(PERIODIC_QUEUE, config)
    enqueued = 0
    due = time.monotonic()
    while not stop.wait(max(0.0, due - time.monotonic())):
        try:
            queue.enqueue(tick, ttl=TICK_TTL_S, result_ttl=0)
            enqueued += 1
        except RedisError as exc:
            log.warning("could not enqueue the periodic tick: %s", exc)
        # Missed seconds (a pause, Redis away) are skipped, not caught up in a burst.
        due = max(due + interval_s, time.monotonic())
    return enqueued


def main() -> None:
    """Run the clock until SIGTERM or SIGINT."""
    from app.config import Config

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    run(vars(Config()), stop)


if __name__ == "__main__":
    main()
