"""Server time of the list pages (search, filter, natural sort, paging: app/listing.py) at 10,000 rows.

Run: .venv/bin/python bench/list_pages_bench.py [--rows 10000] [--repeat 10] [--json PATH]

The database is filled as bench/pages_bench.py fills it (nodes, users with placements, the index of
web domains, domain names, mail domains and mailboxes, operations), then topped up in bulk so that the
users and operations tables hold `--rows` rows too. Each list page is requested with the Flask test
client (server time, no HTTP) as it is used: the first page, a search, a filter, a natural sort by
another column, the last page, and the HTMX fragment the controls swap in. The target is a p50 well
under a second (TARGET_MS); a page over it is named at the end and the exit status is 1.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pages_bench import PASSWORD, login, populate, rows_shown
from proxy_bench import ROOT, make_app, percentiles, start_redis, timed

TARGET_MS = 250.0


def top_up(app, rows: int) -> None:
    """Users and operations up to `rows` each, inserted in bulk."""
    from sqlalchemy import func, insert, select

    from app.extensions import db
    from app.models import Operation, User
    from app.models.base import utcnow

    now = utcnow()
    with app.app_context():
        pw_hash = db.session.scalar(select(User.password_hash).where(User.name == "benchadmin"))
        have = db.session.scalar(select(func.count()).select_from(User))
        db.session.execute(insert(User), [
            {"name": f"client{i}", "password_hash": pw_hash, "level": "user", "active": i % 17 != 0,
             "created_at": now - timedelta(minutes=i)} for i in range(1, rows - have + 1)])
        have = db.session.scalar(select(func.count()).select_from(Operation))
        statuses = ("succeeded", "succeeded", "succeeded", "failed", "partial", "refused")
        db.session.execute(insert(Operation), [
            {"kind": "check_node", "title": f"Check node node{i % 100 + 1:03d}",
             "created_at": now - timedelta(minutes=i), "status": statuses[i % len(statuses)],
             "message": f"run {i}", "params": {}, "log": ""}
            for i in range(1, rows - have + 1)])
        db.session.commit()


def cases() -> list[tuple[str, str, str, bool]]:
    """(label, as whom, path, HTMX fragment)."""
    listed = []
    for label, path, sort, filter_arg in (
            ("Web domains", "/domains/web", "owner", "owner=bigowner"),
            ("Domain names", "/domains/names", "node", "owner=user007"),
            ("Mail domains", "/mail/domains", "owner", "node=node002"),
            ("Mailboxes", "/mail/mailboxes", "node", "owner=bigowner"),
            ("Users", "/accounts/users", "uid", "status=suspended"),
            ("Operations", "/operations/", "status", "status=failed"),
            ("Nodes", "/cluster/nodes", "state", "state=ready")):
        listed += [
            (f"{label}: first page", "admin", path, False),
            (f"{label}: search", "admin", f"{path}?q=1", False),
            (f"{label}: filter", "admin", f"{path}?{filter_arg}", False),
            (f"{label}: sort by {sort}, descending", "admin", f"{path}?sort={sort}&dir=desc", False),
            (f"{label}: last page", "admin", f"{path}?page=1000000", False),
            (f"{label}: 200 a page, HTMX", "admin", f"{path}?per_page=200&page=3", True),
        ]
    listed += [("customer: Web domains, search", "user", "/domains/web?q=site00", False),
               ("customer: Web domains, sort desc, page 5", "user", "/domains/web?dir=desc&page=5", False)]
    return listed


def measure(app, repeat: int) -> list[dict]:
    clients = {"admin": login(app, "benchadmin"), "user": login(app, "bigowner")}
    results = []
    for label, who, path, fragment in cases():
        client = clients[who]
        headers = {"HX-Request": "true"} if fragment else {}
        answer = client.get(path, headers=headers)
        assert answer.status_code == 200, f"{label}: {answer.status_code} {answer.data[:300]!r}"
        samples = [timed(lambda c=client, p=path, h=headers: c.get(p, headers=h)) for _ in range(repeat)]
        p50, p99 = percentiles(samples)
        count = answer.data.decode().split('class="count"', 1)[-1].split(">", 1)[-1].split("<", 1)[0]
        row = {"page": label, "path": path, "htmx": fragment, "p50_ms": round(p50, 1), "p99_ms": round(p99, 1),
               "rows": rows_shown(answer.data, False), "count": count.strip(), "meets": p50 < TARGET_MS}
        results.append(row)
        print(f"{label:<44} {row['p50_ms']:8.1f} {row['p99_ms']:8.1f} {row['rows']:5d}  {row['count']}", flush=True)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="list-bench-") as tmp_name:
        tmp = Path(tmp_name)
        redis, redis_url = start_redis(tmp)
        try:
            app = make_app(tmp, redis_url)
            built = time.perf_counter()
            populate(app, 100, 200, args.rows, 1_000)
            top_up(app, args.rows)
            print(f"data: {args.rows} web domains, domain names, users and operations; {args.rows // 2} mail "
                  f"domains, {3 * (args.rows // 2)} mailboxes (built in {time.perf_counter() - built:.1f} s)")
            print(f"\n{args.repeat} requests per page, Flask test client (server time), {os.cpu_count()} cores, "
                  f"load average {os.getloadavg()[0]:.1f}, password {PASSWORD!r}\n")
            print(f"{'page':<44} {'p50 ms':>8} {'p99 ms':>8} {'rows':>5}  count shown")
            results = measure(app, args.repeat)
        finally:
            redis.terminate()
            redis.wait(10)
    missed = [r["page"] for r in results if not r["meets"]]
    print(f"\np50 over {TARGET_MS:.0f} ms: {', '.join(missed) if missed else 'none'}")
    out = args.json or ROOT / "bench" / "results" / f"{datetime.now(UTC):%Y-%m-%d}-list-pages.json"
    out.write_text(json.dumps({"rows": args.rows, "target_ms": TARGET_MS, "results": results}, indent=1) + "\n")
    print(f"written to {out}")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
