"""/ispmgr's own cost: func=user at 10,000 users, and creating a user through /ispmgr against /api/v1.

Run: .venv/bin/python bench/ispmgr_user_list.py [--users 10000] [--calls 50] [--creates 100]

In-process (Flask test client) on a migrated SQLite database with a private redis-server, as an
administrator authenticated by an API token (a password would add an argon2 check to every call).
1. p50/p99 of func=user (out=json and out=xml) at --users customers with plans, each placed on the node
   and measured by it (the disk use is summed), against GET /api/v1/users.
2. p50/p99 of a user create through /ispmgr (user.add, form-encoded) and through POST /api/v1/users,
   alternated call by call, with the node's agent replaced by a stub that answers at once: the difference
   of the medians is the compatibility layer's own cost (the target is under 1 ms).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.processes import free_port, listening_on, redis_server_binary, wait_until  # noqa: E402


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p99 in milliseconds."""
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000


CPU: list[float] = []  # the process's CPU time of each timed call, beside its wall time


def timed(action) -> float:
    """Wall seconds of one call; its CPU seconds go to CPU (on a loaded machine, the figure that carries)."""
    start, cpu = time.perf_counter(), time.process_time()
    action()
    CPU.append(time.process_time() - cpu)
    return time.perf_counter() - start


def seed(app, count: int) -> str:
    """An admin with a token, a ready node, two plans and `count` customers; returns the token."""
    from sqlalchemy import insert

    from app.extensions import db
    from app.models import NodeState, Placement, User, UserAccount
    from app.services import accounts, plans
    from app.services.nodes import change_state, create_node

    admin = accounts.create_user("root", "bench password 1", accounts.UserLevel.ADMIN)
    token = accounts.create_token(admin, "bench")[1]
    node = create_node("n1", "127.0.0.1", roles=["web", "dns", "mail"], reason="bench")
    db.session.flush()
    change_state(node, NodeState.READY, "bench")
    db.session.commit()
    plan_ids = [plans.create_plan({"name": name, "limits": {"webdomains": 5}}).id for name in ("small", "big")]
    hashed = accounts.hash_password("bench password 1")
    db.session.execute(insert(User), [{"name": f"u{i:05d}", "password_hash": hashed, "level": "user"}
                                      for i in range(count)])
    ids = db.session.scalars(db.select(User.id).where(User.level == "user").order_by(User.id)).all()
    db.session.execute(insert(UserAccount), [{"user_id": uid, "uid": 20000 + n, "gid": 20000 + n, "roles": ["web"],
                                              "limits": {"mailboxes": 3} if n % 3 == 0 else {},
                                              "plan_id": plan_ids[n % 2]} for n, uid in enumerate(ids)])
    db.session.execute(insert(Placement), [{"user_id": uid, "role": "web", "node_id": node.id} for uid in ids])
    node.stats = {"disk": {"free": 100.0, "used_percent": 1.0}, "memory": {"available": 4.0},
                  "usage": {"measured_at": "2026-01-01T00:00:00Z",
                            "owners": {f"u{i:05d}": 2**20 * (i % 500) for i in range(count)}}}
    db.session.commit()
    return token


def main() -> None:
    """Seed, then print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=10000)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--creates", type=int, default=100)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    from flask_migrate import upgrade

    from app import create_app
    from app.config import TestConfig

    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        redis = subprocess.Popen([redis_server_binary(), "--port", str(port), "--save", "", "--appendonly", "no"],
                                 stdout=subprocess.DEVNULL)
        try:
            wait_until(listening_on(port), 10, what="redis")
            app = create_app(TestConfig(Path(tmp), f"redis://127.0.0.1:{port}/0"))
            app.logger.disabled = True
            import logging

            logging.disable(logging.INFO)
            with app.app_context():
                upgrade()
                token = seed(app, args.users)
            client = app.test_client()
            bearer = {"Authorization": f"Bearer {token}"}
            authinfo = f"root:{token}"
            for label, call in (
                ("ispmgr func=user out=json", lambda: client.get("/ispmgr", query_string={
                    "func": "user", "out": "json", "authinfo": authinfo})),
                ("ispmgr func=user out=xml", lambda: client.get("/ispmgr", query_string={
                    "func": "user", "out": "xml", "authinfo": authinfo})),
                ("GET /api/v1/users", lambda: client.get("/api/v1/users", headers=bearer)),
            ):
                call()
                CPU.clear()
                p50, p99 = percentiles([timed(call) for _ in range(args.calls)])
                c50, c99 = percentiles(CPU)
                print(f"{label:28} {args.users} users: wall p50 {p50:7.1f} ms p99 {p99:7.1f} ms;"
                      f"  CPU p50 {c50:7.1f} ms p99 {c99:7.1f} ms")
            serial = iter(range(10**6))
            ispmgr, api = [], []
            with mock.patch("app.services.users.call_agent", lambda *a, **k: {}):
                for _ in range(args.creates):
                    name = f"c{next(serial)}"
                    ispmgr.append(timed(lambda n=name: client.post("/ispmgr", data={
                        "func": "user.add", "sok": "ok", "out": "json", "authinfo": authinfo, "name": n,
                        "passwd": "bench password 1", "preset": "small"})))
                    name = f"c{next(serial)}"
                    api.append(timed(lambda n=name: client.post("/api/v1/users", headers=bearer, json={
                        "name": n, "password": "bench password 1", "plan": "small"})))
            (i50, i99), (a50, a99) = percentiles(ispmgr), percentiles(api)
            print(f"create via /ispmgr user.add      p50 {i50:7.2f} ms  p99 {i99:7.2f} ms")
            print(f"create via POST /api/v1/users    p50 {a50:7.2f} ms  p99 {a99:7.2f} ms")
            print(f"compatibility layer's own cost (difference of p50s): {i50 - a50:+.2f} ms")
            answer = client.get("/ispmgr", query_string={"func": "user", "out": "json", "authinfo": authinfo})
            listed = answer.json["doc"]["elem"]
            print(f"func=user listed {len(listed)} customers; first: {listed[0]}")
        finally:
            redis.terminate()
            redis.wait()


if __name__ == "__main__":
    main()
