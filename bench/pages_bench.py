"""Server time of the panel's main pages at 100 nodes / 10,000 domains.

Run: .venv/bin/python bench/pages_bench.py [--nodes 100] [--domains 10000] [--users 200] [--repeat 20]
                                           [--json PATH] [--profile LABEL]

A migrated SQLite database in a temporary data dir (a private redis-server, as bench/proxy_bench.py
sets it up) is filled in bulk, as the panel itself stores it: ready nodes of various roles with the
stats documents the collector keeps, their state history and setup operations, panel users with
accounts and placements, the master's index of web domains, domain names, mail domains and
mailboxes, list-change operations with per-node outcomes, and desyncs. No agent runs: every page
timed here is drawn from the master's database. Each page is requested with the Flask test client
(server time, no HTTP) after a warm-up, `--repeat` times, as the admin or as a user owning many
domains, and the table shows p50 / p99 / max wall time, the median CPU time of this process per
request (less sensitive to other load on the machine than the wall time), the rows shown, the SQL
statements and the size of one answer.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from proxy_bench import ROOT, make_app, percentiles, start_redis, timed

from agent.heap import freeze_loaded
from tests.support.panel import csrf_from
from tests.support.processes import free_port

TARGET_MS = 100.0
PASSWORD = "a bench password"
ROLE_SETS = (["web"], ["web", "dns"], ["mail"], ["dns"], ["web", "dns", "mail"], ["web", "mail"], ["web"])
STEP_LINES = ("connect as root", "create ispmaster", "authorize the master's key", "check the OS",
              "copy the agent wheelhouse", "install the agent", "start the agent", "register desyncs")


def stats_document(rng: random.Random, roles: list[str], lists: dict) -> dict:
    """A /v1/stats answer as the collector stores it in Node.stats."""
    total_mem = rng.choice((8, 16, 32, 64)) * 1024 ** 3
    total_disk = rng.choice((250, 500, 1000)) * 1000 ** 3
    used = rng.uniform(0.1, 0.9)
    return {
        "api_version": 1, "agent_version": "0.1.0", "uptime_s": rng.randint(3600, 90 * 86400),
        "load": [round(rng.uniform(0, 4), 2) for _ in range(3)],
        "memory": {"total": total_mem, "available": int(total_mem * (1 - used)), "used_percent": round(used * 100, 1)},
        "disk": {"path": "/", "total": total_disk, "free": int(total_disk * (1 - used)),
                 "used_percent": round(used * 100, 1)},
        "roles": {role: {"installed": True, "missing": []} for role in roles},
        "software": {"state": "idle"},
        "lists": lists,
    }


def populate(app, node_count: int, user_count: int, domain_count: int, big_owner_share: int) -> dict:
    """Fill the database in bulk; returns the ids the pages need."""
    from sqlalchemy import insert, select

    from app.extensions import db
    from app.models import (
        Desync,
        DomainIndex,
        MailboxIndex,
        MailDomainIndex,
        Node,
        NodeStateChange,
        Operation,
        OperationNode,
        Placement,
        PlacementDecision,
        User,
        UserAccount,
        UserLevel,
        WebDomainIndex,
    )
    from app.models.base import utcnow
    from app.services import accounts
    from app.services.lists import LISTS

    rng = random.Random(8)
    now = utcnow()
    closed_port = free_port()  # nothing listens there: an agent call is refused at once
    held = {name: {"version": 7, "hash": f"{rng.getrandbits(256):064x}"} for name in LISTS}
    with app.app_context():
        admin = accounts.create_user("benchadmin", PASSWORD, UserLevel.ADMIN)
        big = accounts.create_user("bigowner", PASSWORD, UserLevel.USER)
        pw_hash = admin.password_hash
        db.session.commit()
        admin_id, big_id = admin.id, big.id

        nodes = []
        for i in range(1, node_count + 1):
            roles = ["web", "dns", "mail"] if i == 1 else ROLE_SETS[i % len(ROLE_SETS)]
            seen = now - timedelta(seconds=rng.uniform(0, 10))
            nodes.append({
                "name": f"node{i:03d}", "address": f"127.0.{i // 250 + 1}.{i % 250 + 1}", "agent_port": closed_port,
                "roles": roles, "weight": rng.choice((50, 100, 100, 200)), "state": "ready", "is_local": i == 1,
                "agent_secret": f"{rng.getrandbits(256):064x}",
                "cert_fingerprint": ":".join(f"{rng.randrange(256):02X}" for _ in range(32)),
                "host_key_fingerprint": f"SHA256:{rng.getrandbits(256):064x}"[:50],
                "agent_version": "0.1.0", "api_version": 1, "last_seen": seen, "last_poll_at": seen,
                "missed_polls": 0, "stats": stats_document(rng, roles, held),
                "created_at": now - timedelta(days=rng.randint(1, 400)), "setup_pending": False,
            })
        db.session.execute(insert(Node), nodes)
        node_rows = db.session.execute(select(Node.id, Node.name, Node.roles).order_by(Node.id)).all()
        node_ids = [r.id for r in node_rows]
        by_role = {role: [r for r in node_rows if role in r.roles] for role in ("web", "dns", "mail")}

        history = []
        for node_id in node_ids:
            at = now - timedelta(days=30)
            path = ["new", "connecting", "installing", "syncing", "ready"]
            for _ in range(rng.randint(2, 8)):
                path += ["unavailable", "ready"] if rng.random() < 0.7 else ["syncing", "ready"]
            for before, after in zip([None, *path], path, strict=False):
                at += timedelta(minutes=rng.randint(1, 600))
                history.append({"node_id": node_id, "at": at, "from_state": before, "to_state": after,
                                "reason": f"poll: {after}" if before else "added by benchadmin"})
        db.session.execute(insert(NodeStateChange), history)

        others = [{"name": f"user{i:03d}", "password_hash": pw_hash, "level": "user", "active": i % 23 != 0,
                   "created_at": now - timedelta(days=rng.randint(1, 700))} for i in range(1, user_count - 1)]
        db.session.execute(insert(User), others)
        owner_ids = [big_id, *db.session.scalars(select(User.id).where(User.name.like("user%")).order_by(User.id))]
        db.session.execute(insert(UserAccount), [
            {"user_id": uid, "uid": 20000 + n, "gid": 20000 + n, "roles": ["web", "dns", "mail"],
             "limits": {"webdomains": 2000, "mailboxes": 500} if n % 3 == 0 else {}}
            for n, uid in enumerate(owner_ids)])
        home = {}
        for n, uid in enumerate(owner_ids):
            for role, candidates in by_role.items():
                chosen = candidates[n % len(candidates)]
                scores = [{"node_id": c.id, "node": c.name, "users": rng.randint(0, 10), "weight": 100,
                           "free": rng.randint(10 ** 9, 10 ** 12), "score": round(rng.uniform(0, 1), 4),
                           "excluded": None} for c in candidates]
                decision = PlacementDecision(user_id=uid, role=role, node_id=chosen.id, chosen_by="auto",
                                             resource="disk", candidates=scores, at=now)
                db.session.add(decision)
                db.session.flush()
                db.session.add(Placement(user_id=uid, role=role, node_id=chosen.id, decision_id=decision.id))
                home[uid, role] = chosen.id

        # The big owner holds big_owner_share of everything; the rest is spread over the other users.
        def owner_of(i: int) -> int:
            return big_id if i < big_owner_share else owner_ids[1 + i % (len(owner_ids) - 1)]

        names = [f"site{i:05d}.example{i % 7}.com" for i in range(domain_count)]
        db.session.execute(insert(WebDomainIndex), [
            {"name": name, "owner_id": owner_of(i), "node_id": home[owner_of(i), "web"]}
            for i, name in enumerate(names)])
        db.session.execute(insert(DomainIndex), [
            {"name": name, "owner_id": owner_of(i), "node_id": home[owner_of(i), "dns"]}
            for i, name in enumerate(names)])
        mail_names = names[::2]
        db.session.execute(insert(MailDomainIndex), [
            {"name": name, "owner_id": owner_of(2 * i), "node_id": home[owner_of(2 * i), "mail"]}
            for i, name in enumerate(mail_names)])
        db.session.execute(insert(MailboxIndex), [
            {"address": f"{box}@{name}", "owner_id": owner_of(2 * i), "node_id": home[owner_of(2 * i), "mail"]}
            for i, name in enumerate(mail_names) for box in ("info", "sales", "admin")])

        # Operations, oldest first: every node's setup, then list changes to every node, checks, syncs.
        start = now - timedelta(days=30)
        ops, outcomes = [], []

        def operation(kind: str, title: str, targets: list, status: str, log_lines: int, **extra) -> None:
            at = start + timedelta(minutes=len(ops) * 5)
            ops.append({"kind": kind, "title": title, "created_by_id": extra.get("by", admin_id), "created_at": at,
                        "started_at": at + timedelta(seconds=1),
                        "finished_at": None if status in ("running", "queued") else at + timedelta(seconds=40),
                        "status": status, "message": extra.get("message", ""),
                        "rq_job_id": f"{rng.getrandbits(64):016x}",
                        "params": extra.get("params", {}),
                        "log": "\n".join(f"{at:%H:%M:%S} step {n}: {STEP_LINES[n % 8]} ok" for n in range(log_lines))})
            for node_id in targets:
                outcome = extra.get("outcome", lambda _n: ("applied", None))(node_id)
                outcomes.append({"op": len(ops), "node_id": node_id, "outcome": outcome[0], "error": outcome[1],
                                 "node_name": f"node{node_ids.index(node_id) + 1:03d}"})

        for node_id in node_ids[1:]:
            operation("node_setup", f"Set up node node{node_ids.index(node_id) + 1:03d}", [node_id], "succeeded", 120,
                      params={"node_id": node_id, "preface": []})
        list_changes = 150
        for n in range(list_changes):
            failing = set(rng.sample(node_ids, rng.choice((0, 0, 0, 1, 3))))

            def outcome(node_id, failing=failing):
                if node_id in failing:
                    return ("unavailable", f"https://127.0.0.1:{closed_port}: connection refused")
                return ("applied", None)

            name = rng.choice(sorted(LISTS))
            operation("list_change", f"{name}: add row", node_ids, "partial" if failing else "succeeded", 30,
                      outcome=outcome, params={"list": name, "action": "add", "row_id": None, "row": {"n": n}},
                      message=f"{len(node_ids) - len(failing)} of {len(node_ids)} nodes applied")
        for _ in range(60):
            node_id = rng.choice(node_ids)
            operation("check_node", f"Check node node{node_ids.index(node_id) + 1:03d}", [node_id], "succeeded", 5)
        operation("list_change", "firewall: add row", node_ids, "running", 10,
                  outcome=lambda node_id: ("applied", None) if node_id % 3 else ("pending", None))
        db.session.execute(insert(Operation), [dict(op) for op in ops])
        op_ids = list(db.session.scalars(select(Operation.id).order_by(Operation.id)))
        db.session.execute(insert(OperationNode), [
            {"operation_id": op_ids[o.pop("op") - 1], **o} for o in outcomes])
        for node_id, op_id in zip(node_ids[1:], op_ids, strict=False):
            db.session.execute(Node.__table__.update().where(Node.id == node_id).values(
                setup_operation_id=op_id, setup_step=9))

        # Desyncs: a few nodes behind on one or more lists; those nodes are syncing or unavailable.
        desyncs = []
        for node_id in rng.sample(node_ids[1:], 12):
            for name in rng.sample(sorted(LISTS) + ["templates"], rng.randint(1, 4)):
                desyncs.append({"node_id": node_id, "list": name, "attempts": rng.randint(0, 9),
                                "since": now - timedelta(minutes=rng.randint(1, 90)),
                                "next_try_at": now + timedelta(seconds=rng.randint(1, 60)),
                                "last_error": "unreachable: connection refused" if rng.random() < 0.5 else None})
        db.session.execute(insert(Desync), desyncs)
        behind = sorted({d["node_id"] for d in desyncs})
        for n, node_id in enumerate(behind):
            state = "unavailable" if n % 4 == 0 else "syncing"
            db.session.execute(Node.__table__.update().where(Node.id == node_id).values(
                state=state, last_poll_error="unreachable: connection refused" if state == "unavailable" else None))
        db.session.commit()
        ids = {
            "admin": admin_id, "big": big_id, "node": node_ids[len(node_ids) // 2], "sync_node": behind[0],
            "list_change": op_ids[len(node_ids)], "setup_op": op_ids[0], "user": owner_ids[5],
            "counts": {"nodes": len(node_ids), "users": user_count, "webdomains": domain_count,
                       "domains": domain_count, "maildomains": len(mail_names), "mailboxes": 3 * len(mail_names),
                       "operations": len(op_ids), "operation_nodes": len(outcomes), "desyncs": len(desyncs),
                       "history": len(history), "big_owner_webdomains": big_owner_share},
        }
        big_token = accounts.create_token(db.session.get(User, big_id), "bench")[1]
        admin_token = accounts.create_token(db.session.get(User, admin_id), "bench")[1]
        ids["tokens"] = {"admin": admin_token, "user": big_token}
        return ids


def login(app, name: str):
    """A test client logged in through the login form."""
    client = app.test_client()
    page = client.get("/login")
    answer = client.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": csrf_from(page.text)})
    assert answer.status_code in (302, 303), f"login as {name}: {answer.status_code}"
    return client


def cases(ids: dict, pages_of_web: int) -> list[tuple[str, str, str, bool]]:
    """(label, as whom, path, HTMX fragment) for every page timed."""
    node, op, user = ids["node"], ids["list_change"], ids["user"]
    return [
        ("dashboard / (redirect)", "admin", "/", False),
        ("Cluster → Nodes", "admin", "/cluster/nodes", False),
        ("  nodes table (HTMX poll)", "admin", "/cluster/nodes", True),
        ("node detail", "admin", f"/cluster/nodes/{node}", False),
        ("  node detail (HTMX poll)", "admin", f"/cluster/nodes/{node}", True),
        ("Cluster → Synchronization", "admin", "/cluster/sync", False),
        ("  sync table (HTMX poll)", "admin", "/cluster/sync", True),
        ("Operations", "admin", "/operations/", False),
        ("  operations table (HTMX poll)", "admin", "/operations/", True),
        ("operation, 100 nodes", "admin", f"/operations/{op}", False),
        ("  operation detail (HTMX poll)", "admin", f"/operations/{op}", True),
        ("operation, node setup log", "admin", f"/operations/{ids['setup_op']}", False),
        ("Accounts → Users", "admin", "/accounts/users", False),
        ("  users table (HTMX refresh)", "admin", "/accounts/users", True),
        ("a user", "admin", f"/accounts/users/{user}", False),
        ("a user's location", "admin", f"/accounts/users/{user}/location", False),
        ("Web domains, page 1", "admin", "/domains/web", False),
        (f"Web domains, page {pages_of_web}", "admin", f"/domains/web?page={pages_of_web}", False),
        ("  web domains table (HTMX refresh)", "admin", "/domains/web", True),
        ("Domain names, page 1", "admin", "/domains/names", False),
        ("Mail domains, page 1", "admin", "/mail/domains", False),
        ("Mailboxes, page 1", "admin", "/mail/mailboxes", False),
        ("user: Web domains, page 1", "user", "/domains/web", False),
        ("user: Web domains, last page", "user", "/domains/web?page=10", False),
        ("user: Domain names, page 1", "user", "/domains/names", False),
        ("user: Mail domains, page 1", "user", "/mail/domains", False),
        ("user: Mailboxes, page 1", "user", "/mail/mailboxes", False),
        ("user: Operations", "user", "/operations/", False),
        ("API GET /nodes", "admin-api", "/api/v1/nodes", False),
        ("API GET /nodes/<id>", "admin-api", f"/api/v1/nodes/{node}", False),
        ("API GET /sync", "admin-api", "/api/v1/sync", False),
        ("API GET /operations", "admin-api", "/api/v1/operations", False),
        ("API GET /operations/<id>", "admin-api", f"/api/v1/operations/{op}", False),
        ("API GET /users", "admin-api", "/api/v1/users", False),
        ("API GET /webdomains (page 1, agents down)", "admin-api", "/api/v1/webdomains", False),
        ("API GET /domains (page 1, agents down)", "admin-api", "/api/v1/domains", False),
        ("API GET /maildomains (page 1, agents down)", "admin-api", "/api/v1/maildomains", False),
        ("user API GET /webdomains (page 1, agent down)", "user-api", "/api/v1/webdomains", False),
    ]


def rows_shown(body: bytes, is_json: bool) -> int:
    """Table rows in an HTML page (header rows left out), or items in a JSON answer."""
    if is_json:
        data = json.loads(body)
        if isinstance(data, dict) and "items" in data:
            return len(data["items"])
        return len(data.get("nodes", [])) or 1 if isinstance(data, dict) else len(data)
    text = body.decode()
    return len(re.findall(r"<tr[ >]", text)) - text.count("<thead>")


class QueryCounter:
    """Counts the SQL statements the engine runs."""

    def __init__(self, engine):
        from sqlalchemy import event

        self.count = 0
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, *_args) -> None:
        self.count += 1


def measure(app, ids: dict, repeat: int, warmup: int, profile: str | None, only: str | None) -> list[dict]:
    """Time every case; returns one result dict per page."""
    from app.extensions import db

    clients = {"admin": login(app, "benchadmin"), "user": login(app, "bigowner")}
    clients["admin-api"] = clients["user-api"] = app.test_client()
    bearer = {"admin-api": ids["tokens"]["admin"], "user-api": ids["tokens"]["user"]}
    with app.app_context():
        counter = QueryCounter(db.engine)
    pages_of_web = (ids["counts"]["webdomains"] + 99) // 100
    results = []
    for label, who, path, fragment in cases(ids, pages_of_web):
        if only and not any(part.strip().lower() in label.lower() for part in only.split(",")):
            continue
        client = clients[who]
        headers = {"HX-Request": "true"} if fragment else {}
        if who in bearer:
            headers["Authorization"] = f"Bearer {bearer[who]}"
        expected = 302 if path == "/" else 200
        answer = None
        for _ in range(warmup):
            answer = client.get(path, headers=headers)
            assert answer.status_code == expected, f"{label}: {answer.status_code} {answer.data[:300]!r}"
        counter.count = 0
        answer = client.get(path, headers=headers)
        queries = counter.count
        samples, cpu = [], []
        for _ in range(repeat):
            started = time.process_time()
            samples.append(timed(lambda c=client, p=path, h=headers: c.get(p, headers=h)))
            cpu.append(time.process_time() - started)
        p50, p99 = percentiles(samples)
        is_json = path.startswith("/api/")
        row = {"page": label.strip(), "as": who, "path": path, "htmx": fragment, "p50_ms": round(p50, 2),
               "p99_ms": round(p99, 2), "max_ms": round(max(samples) * 1000, 2),
               "cpu_p50_ms": round(percentiles(cpu)[0], 2),
               "rows": rows_shown(answer.data, is_json) if expected == 200 else 0, "queries": queries,
               "kib": round(len(answer.data) / 1024, 1), "meets_100ms": p50 < TARGET_MS}
        results.append(row)
        print(f"{label:<42} {row['p50_ms']:8.1f} {row['p99_ms']:8.1f} {row['max_ms']:8.1f} {row['cpu_p50_ms']:8.1f} "
              f"{row['rows']:6d} "
              f"{queries:6d} {row['kib']:7.1f}  {'yes' if row['meets_100ms'] else 'NO'}", flush=True)
        if profile and profile.lower() in label.lower():
            profile_page(client, path, headers)
    return results


def profile_page(client, path: str, headers: dict) -> None:
    """cProfile of 10 requests of one page: the top functions by cumulative and by own time."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(10):
        client.get(path, headers=headers)
    profiler.disable()
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(30)
    stats.sort_stats("tottime").print_stats(20)


def main() -> None:
    """Build the data, time the pages, print the table and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--domains", type=int, default=10_000)
    parser.add_argument("--big-owner", type=int, default=1_000, help="web domains (and zones) the user owns")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--json", type=Path, help="where to write the figures (default: "
                                                   "bench/results/<date>-pages.json)")
    parser.add_argument("--only", help="time only the pages whose label contains one of these comma-separated texts")
    parser.add_argument("--profile", help="cProfile the pages whose label contains this text")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pages-bench-") as tmp_name:
        tmp = Path(tmp_name)
        redis, redis_url = start_redis(tmp)
        try:
            app = make_app(tmp, redis_url)
            built = time.perf_counter()
            ids = populate(app, args.nodes, args.users, args.domains, args.big_owner)
            built = time.perf_counter() - built
            print(f"data: {ids['counts']} (built in {built:.1f} s)")
            freeze_loaded()  # as each web worker does once it has loaded the app (app/gunicorn_conf.py)
            load_before = os.getloadavg()[0]
            print(f"\n{args.repeat} requests per page after {args.warmup} warm-up, Flask test client (server time, "
                  f"no HTTP), {os.cpu_count()} cores, load average {load_before:.1f}\n")
            print(f"{'page':<42} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'CPU p50':>8} {'rows':>6} {'SQL':>6} "
                  f"{'KiB':>7}  <100ms")
            results = measure(app, ids, args.repeat, args.warmup, args.profile, args.only)
        finally:
            redis.terminate()
            redis.wait(10)
    load_after = os.getloadavg()[0]
    missed = [r["page"] for r in results if not r["meets_100ms"]]
    print(f"\nload average {load_before:.1f} → {load_after:.1f}; p50 over {TARGET_MS:.0f} ms: "
          f"{', '.join(missed) if missed else 'none'}")
    out = args.json or ROOT / "bench" / "results" / f"{datetime.now(UTC):%Y-%m-%d}-pages.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"date": datetime.now(UTC).isoformat(timespec="seconds"), "cores": os.cpu_count(),
                               "load": [load_before, load_after], "repeat": args.repeat, "target_ms": TARGET_MS,
                               "data": ids["counts"], "pages": results}, indent=1))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
