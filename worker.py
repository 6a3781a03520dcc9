"""The RQ worker entry point: `python worker.py [QUEUE ...] [--simple] [--burst]`."""

from __future__ import annotations

import argparse
import logging

from agent.heap import freeze_loaded
from app import create_app
from app.jobs import use_app
from app.queues import ALL_QUEUES, PERIODIC_QUEUE, make_worker


def main(argv: list[str] | None = None) -> None:
    """Run a worker for the given queues (all of them by default)."""
    parser = argparse.ArgumentParser(description="Run a Hostfleet RQ worker.")
    parser.add_argument("queues", nargs="*", default=list(ALL_QUEUES), help="queues to serve, in priority order")
    parser.add_argument(
        "--simple", action="store_true",
        help="run jobs in this process instead of a fork per job (starts each job at once and keeps agent connections)"
    )
    parser.add_argument("--burst", action="store_true", help="stop when the queues are empty")
    parser.add_argument("--name", help="worker name (default: generated)")
    args = parser.parse_args(argv)

    app = create_app()
    use_app(app)
    # The app and its modules live as long as the worker: no full garbage collection walks them again.
    logging.getLogger("hostfleet.worker").info("froze %d objects loaded at start", freeze_loaded())
    # The periodic queue runs a job every second: only its problems are worth a log line.
    quiet = set(args.queues) <= {PERIODIC_QUEUE}
    logging.getLogger("rq.worker").setLevel(logging.WARNING if quiet else logging.INFO)
    # Jobs are read with the panel's serializer; a job this panel did not sign is dropped unrun.
    worker = make_worker(args.queues, app.config, simple=args.simple, name=args.name)
    # No RQ scheduler: nothing here is scheduled for later (`app.cron` enqueues the periodic tick), and
    # RQ forks it from the worker, so it inherits the worker's Redis sockets. A worker SIGKILLed while
    # waiting for a job would leave its blocking dequeue open in that child, and Redis would hand the
    # next job to a connection nobody reads (recovered only after the abandoned-job grace).
    worker.work(burst=args.burst, with_scheduler=False, logging_level="WARNING" if quiet else "INFO")


if __name__ == "__main__":
    main()
