"""The master's proxy overhead on user data, and the web-domain list page at 10,000 domains.

Run: .venv/bin/python bench/proxy_bench.py [--calls 200] [--creates 50] [--domains 10000] [--others 1000]

1. One real agent on loopback (private root) and the master served over HTTP by gunicorn as
   `make run` starts it (one worker process, 4 threads), with a Bearer token (Basic auth would
   add an argon2 check, about 0.1 s, to every call). p50/p99 of listing and creating a web domain
   through the master (GET/POST /api/v1/webdomains) against the same calls made straight to the
   agent with the pinned, signed client the master uses. Each way through the master (HTTP, and
   in-process with the Flask test client) runs in a phase of its own, alternated call by call with
   the direct call it is compared with.
   The master's own time of each call is measured too: over HTTP, the call's latency less the
   time the master waited on the agent (its Server-Timing `agent` figure); in-process, the call
   less its agent call. That is the overhead per call, without the agent's own jitter (a create's
   agent time varies by several ms from one call to the next, which moves a difference of two p50s
   as much). Where the master's in-process time goes is printed (the token check, the agent call,
   the rest).
   Then `--others` web domains of another user are added to the node: the node's answer for the
   bench user's records only (what the master asks for a user's list) against its whole listing,
   and the list through the master, alternated.
2. The same in-process create with the agent client replaced by a stub that answers at once, and by
   one that answers after 25 ms of doing nothing: the master's own work, and what a wait of a real
   create's length alone adds to it on this machine.
3. The index alone: 10,000 web domains on 10 nodes; the time of the Web domains page (first and
   last of 100 pages, as the admin) and of a user's page holding 1,000 of them.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


from agent.heap import freeze_loaded  # noqa: E402
from tests.support.agents import seed_account_files  # noqa: E402
from tests.support.panel import csrf_from  # noqa: E402
from tests.support.processes import free_port, listening_on, redis_server_binary, wait_until  # noqa: E402


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p99 in milliseconds."""
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
    return statistics.median(ordered) * 1000, p99 * 1000


def timed(action) -> float:
    """Seconds one call takes."""
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


class MasterClient:
    """The panel's API over one kept-alive HTTP connection with a Bearer token: http.client, as lean
    as the agent client the direct calls use (requests would add about 0.4 ms per call here, which
    is the client's cost, not the master's)."""

    # gunicorn closes a kept-alive connection idle for 2 s (its keepalive); one left idle longer
    # (while another phase ran) is reopened before it is used, not written to after the close.
    IDLE_S = 1.5

    def __init__(self, port: int, token: str):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self.used = time.monotonic()

    def call(self, method: str, path: str, body: object = None) -> http.client.HTTPResponse:
        """One call; the response (read), or AssertionError for an error status."""
        headers = dict(self.headers)
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if time.monotonic() - self.used > self.IDLE_S:
            self.conn.close()  # the next request opens a new one
        self.conn.request(method, path, body=payload, headers=headers)
        response = self.conn.getresponse()
        response.read()
        self.used = time.monotonic()
        assert response.status < 400, f"{method} {path}: {response.status}"
        return response


def agent_wait(response: http.client.HTTPResponse) -> float:
    """Seconds the master waited on the agent for this answer, from its Server-Timing header."""
    for part in (response.getheader("Server-Timing") or "").split(","):
        name, _, rest = part.strip().partition(";")
        if name == "agent":
            return float(rest.split(";")[0].removeprefix("dur=")) / 1000
    raise AssertionError(f"no agent timing in {response.getheader('Server-Timing')!r}")


def timed_via_master(action, own: list[float]) -> float:
    """Seconds one call through the master takes; its own share (less its wait on the agent) goes to own."""
    start = time.perf_counter()
    response = action()
    took = time.perf_counter() - start
    own.append(took - agent_wait(response))
    return took


def watch_time() -> dict:
    """Wrap the API token check and the agent client so their time adds up in the returned dict."""
    from agent.client import AgentClient
    from app.services import accounts

    spent = {"token": 0.0, "agent": 0.0}
    check, request = accounts.user_for_token, AgentClient.request

    def user_for_token(raw):
        start = time.perf_counter()
        try:
            return check(raw)
        finally:
            spent["token"] += time.perf_counter() - start

    def agent_request(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return request(self, *args, **kwargs)
        finally:
            spent["agent"] += time.perf_counter() - start

    accounts.user_for_token = user_for_token
    AgentClient.request = agent_request
    return spent


def add_parts(parts: dict, spent: dict, took: float) -> None:
    """Add one call's token, agent and total time, and keep its own time (the call less its agent call)."""
    parts["token"] += spent["token"]
    parts["agent"] += spent["agent"]
    parts["total"] += took
    parts["own"].append(took - spent["agent"])


def start_redis(workdir: Path) -> tuple[subprocess.Popen, str]:
    """A private redis-server (rate limits and the reconcile marker need one)."""
    port = free_port()
    proc = subprocess.Popen([redis_server_binary(), "--bind", "127.0.0.1", "--port", str(port), "--dir",
                             str(workdir), "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(listening_on(port), 10, what="redis")
    return proc, f"redis://127.0.0.1:{port}/0"


def start_agent(home: Path) -> tuple[subprocess.Popen, dict]:
    """A real agent process for one node, with the account files a Debian root has."""
    from agent.config import initialize

    port = free_port()
    result = initialize(home / "agent.json", root=home / "root", state_dir=home / "state",
                        secret_file=home / "secret", listen_host="127.0.0.1", listen_port=port, roles=["web"],
                        hostnames=["localhost"], addresses=["127.0.0.1"], log_file=home / "agent.log")
    seed_account_files(home / "root")
    proc = subprocess.Popen([sys.executable, "-m", "agent", "serve", "--config", str(home / "agent.json")],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(listening_on(port), 15, what="the agent")
    return proc, {"port": port, "fingerprint": result["fingerprint"],
                  "secret": (home / "secret").read_text().strip()}


def serve(tmp: Path, redis_url: str) -> tuple[subprocess.Popen, int]:
    """The master over HTTP as `make run` serves it (gunicorn, 4 threads; one worker process here),
    on the database make_app made; the process and its port."""
    port = free_port()
    env = {**os.environ, "HOSTFLEET_DATA": str(tmp / "data"), "REDIS_URL": redis_url,
           "DATABASE_URL": f"sqlite:///{tmp / 'data' / 'test.db'}"}
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "--workers", "1", "--threads", "4",
                             "--bind", f"127.0.0.1:{port}", "--access-logfile", "-", "--no-control-socket",
                             "--config", "python:app.gunicorn_conf", "app:create_app()"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(listening_on(port), 30, what="gunicorn")
    return proc, port


def proxy_overhead(app, tmp: Path, redis_url: str, calls: int, creates: int, others: int = 0) -> str:
    """List and create through the master and straight to the agent; print p50/p99 of each. Returns the
    bench user's API token."""
    from agent.client import AgentClient
    from app.extensions import db
    from app.models import NodeState, UserLevel
    from app.services import accounts
    from app.services.collector import collect_stats
    from app.services.nodes import change_state, create_node
    from app.services.users import make_user

    agent, facts = start_agent(tmp / "n1")
    web = None
    try:
        with app.app_context():
            node = create_node("n1", "127.0.0.1", roles=["web"], reason="bench", agent_port=facts["port"],
                               agent_secret=facts["secret"], cert_fingerprint=facts["fingerprint"])
            db.session.flush()
            change_state(node, NodeState.READY, "bench")
            db.session.commit()
            collect_stats()
            user = make_user("bench", "a bench password", roles=("web",), level=UserLevel.USER)
            token = accounts.create_token(user, "bench")[1]
        web, port = serve(tmp, redis_url)
        master = MasterClient(port, token)
        inproc = app.test_client()
        bearer = {"Authorization": f"Bearer {token}"}
        direct = AgentClient(f"https://127.0.0.1:{facts['port']}", facts["secret"], facts["fingerprint"],
                             timeout=(3.05, 30))
        for i in range(20):
            master.call("POST", "/api/v1/webdomains", {"name": f"seed{i}.example.com"})
        for _ in range(10):
            master.call("GET", "/api/v1/webdomains")
            direct.get("/v1/webdomains?owner=bench")
        spent = watch_time()
        parts = {what: {"token": 0.0, "agent": 0.0, "total": 0.0, "own": []} for what in ("list", "create")}
        own_http = {"list": [], "create": []}

        def via_http(what: str, i: int) -> float:
            if what == "list":
                return timed_via_master(lambda: master.call("GET", "/api/v1/webdomains"), own_http["list"])
            return timed_via_master(lambda: master.call("POST", "/api/v1/webdomains", {"name": f"m{i}.example.com"}),
                                    own_http["create"])

        def via_wsgi(what: str, i: int) -> float:
            spent.update(token=0.0, agent=0.0)
            if what == "list":
                took = timed(lambda: inproc.get("/api/v1/webdomains", headers=bearer))
            else:
                took = timed(lambda: inproc.post("/api/v1/webdomains", json={"name": f"w{i}.example.com"},
                                                 headers=bearer))
            add_parts(parts[what], spent, took)
            return took

        def straight(what: str, tag: str, i: int) -> float:
            if what == "list":
                # What the master asks the node for a user's list: that user's records.
                return timed(lambda: direct.get("/v1/webdomains?owner=bench"))
            return timed(lambda: direct.post("/v1/webdomains", json={"name": f"d{tag}{i}.example.com",
                                                                      "owner": "bench"}))

        # Each way through the master is alternated call by call with the same call straight to the
        # agent, in its own phase: the direct figure it is compared with then comes from the same
        # minutes (this VM's speed drifts) and the same node size. The HTTP master and the in-process
        # one are not interleaved with each other: two panel processes writing one SQLite file in
        # lockstep (each invalidating the other's page cache and running on caches the other has just
        # used) doubled the own time of each, which no request meets in a deployment.
        results, overhead = {}, {}
        for what, count in (("list", calls), ("create", creates)):
            for way, call in (("HTTP", via_http), ("WSGI", via_wsgi)):
                via, alone = [], []
                for i in range(count):
                    via.append(call(what, i))
                    alone.append(straight(what, way, i))
                results[f"{what} via master ({way})"] = via
                results[f"{what} direct (with {way})"] = alone
                overhead[(what, way)] = percentiles(via)[0] - percentiles(alone)[0]
        print(f"\nproxy overhead: {calls} lists of 20 domains and {creates} creates each way (the node holding "
              f"20 to {20 + 4 * creates}), alternated with the same call straight to the agent; "
              f"load average {os.getloadavg()[0]:.1f}")
        print(f"{'call':<26} {'p50 ms':>8} {'p99 ms':>8}")
        for label, samples in results.items():
            p50, p99 = percentiles(samples)
            print(f"{label:<26} {p50:8.2f} {p99:8.2f}")
        for what in ("list", "create"):
            for way in ("HTTP", "WSGI"):
                print(f"{f'{what} overhead, {way} (p50)':<26} {overhead[(what, way)]:8.2f}")
            for way, samples in (("HTTP", own_http[what]), ("WSGI", parts[what]["own"])):
                own50, own99 = percentiles(samples)
                print(f"{f'{what}: master own, {way}':<26} {own50:8.2f} {own99:8.2f}")
        print("where the master's time goes (WSGI, mean per call):")
        for what, count in (("list", calls), ("create", creates)):
            ms = {k: v / count * 1000 for k, v in parts[what].items() if k != "own"}
            rest = ms["total"] - ms["token"] - ms["agent"]
            print(f"  {what:<7} total {ms['total']:6.2f} ms = API token check {ms['token']:5.2f}"
                  f" + agent call {ms['agent']:6.2f} + the rest {rest:5.2f}")
        if others:
            crowded_node(app, master, direct, calls, others)
    finally:
        for proc in (agent, web):
            if proc is not None:
                proc.terminate()
                proc.wait(10)
    return token


def crowded_node(app, master: MasterClient, direct, calls: int, others: int) -> None:
    """The bench user's list when the node also holds `others` web domains of another user: what the
    node's answer costs for that user's records only (what the master asks) and for its whole listing
    (what it asked before), and the list through the master."""
    from app.models import UserLevel
    from app.services.users import make_user

    with app.app_context():
        make_user("other", "a bench password", roles=("web",), level=UserLevel.USER)
    for i in range(others):
        direct.post("/v1/webdomains", json={"name": f"other{i}.example.net", "owner": "other"})
    held = len(direct.get("/v1/webdomains")[1]["items"])
    mine = len(direct.get("/v1/webdomains?owner=bench")[1]["items"])
    samples = {"node, the user's records": [], "node, its whole listing": [], "list via master (HTTP)": []}
    for _ in range(calls):
        samples["node, the user's records"].append(timed(lambda: direct.get("/v1/webdomains?owner=bench")))
        samples["node, its whole listing"].append(timed(lambda: direct.get("/v1/webdomains")))
        samples["list via master (HTTP)"].append(timed(lambda: master.call("GET", "/api/v1/webdomains")))
    print(f"\na crowded node: {held} web domains, {mine} of them the bench user's; {calls} calls each, alternated")
    print(f"{'call':<26} {'p50 ms':>8} {'p99 ms':>8}")
    for label, taken in samples.items():
        p50, p99 = percentiles(taken)
        print(f"{label:<26} {p50:8.2f} {p99:8.2f}")


def master_alone(app, token: str, creates: int, wait_s: float = 0.025) -> None:
    """The master's own time per create (in-process) with the agent client replaced by a stub that answers
    at once, and one that answers after wait_s of doing nothing (about a real create's agent time).

    The first is what the master's work costs; the difference is what waiting alone adds to the same work
    on this machine (a process that has slept runs its next milliseconds slower), which the real
    create's figure carries too.
    """
    from agent.client import AgentClient

    real = AgentClient.request
    client = app.test_client()
    bearer = {"Authorization": f"Bearer {token}"}
    print(f"\ncreate with the agent stubbed (in-process, {creates} each): the master's own time")
    print(f"{'stub answers':<26} {'p50 ms':>8} {'p99 ms':>8}")
    try:
        for label, wait in (("at once", 0.0), (f"after {wait_s * 1000:.0f} ms idle", wait_s)):
            def stub(self, method, path, json=None, wait=wait, **kwargs):
                time.sleep(wait)
                return 201, dict(json or {})

            AgentClient.request = stub
            own = []
            for i in range(creates + 10):
                start = time.perf_counter()
                answer = client.post("/api/v1/webdomains", json={"name": f"stub{wait}-{i}.example.com"}, headers=bearer)
                took = time.perf_counter() - start - wait
                assert answer.status_code == 201, answer.text
                if i >= 10:  # the first few warm up
                    own.append(took)
            p50, p99 = percentiles(own)
            print(f"{label:<26} {p50:8.2f} {p99:8.2f}")
    finally:
        AgentClient.request = real


def list_page_at_scale(app, domains: int, nodes: int) -> None:
    """The Web domains page with `domains` index rows spread over `nodes` nodes (no agent asked)."""
    from sqlalchemy import insert

    from app.extensions import db
    from app.models import Node, User, UserLevel, WebDomainIndex
    from app.services import accounts

    with app.app_context():
        node_ids = []
        for i in range(nodes):
            node = Node(name=f"scale{i}", address=f"198.18.0.{i + 10}", roles=["web"], state="ready")
            db.session.add(node)
            db.session.flush()
            node_ids.append(node.id)
        owners = [accounts.create_user(f"owner{i}", "a bench password", UserLevel.USER).id for i in range(10)]
        accounts.create_user("scaleadmin", "a bench password", UserLevel.ADMIN)
        rows = [{"name": f"site{i:05d}.example.com", "owner_id": owners[i % len(owners)],
                 "node_id": node_ids[i % nodes]} for i in range(domains)]
        db.session.execute(insert(WebDomainIndex), rows)
        db.session.commit()
        per_user = db.session.query(WebDomainIndex).filter_by(owner_id=owners[0]).count()
        assert db.session.query(User).count() >= 11

    def session(name: str):
        client = app.test_client()
        page = client.get("/login")
        client.post("/login", data={"username": name, "password": "a bench password",
                                    "csrf_token": csrf_from(page.text)})
        return client

    admin, user = session("scaleadmin"), session("owner0")
    last = (domains + 99) // 100
    cases = {
        f"admin, page 1 of {last}": (admin, "/domains/web"),
        f"admin, page {last} of {last}": (admin, f"/domains/web?page={last}"),
        f"user with {per_user}, page 1": (user, "/domains/web"),
        "admin, HTMX table only": (admin, "/domains/web"),
    }
    print(f"\nweb-domain list page: {domains} domains on {nodes} nodes (index only, 100 per page)")
    print(f"{'page':<28} {'p50 ms':>8} {'p99 ms':>8}")
    for label, (client, path) in cases.items():
        headers = {"HX-Request": "true"} if "HTMX" in label else {}
        for _ in range(5):
            assert client.get(path, headers=headers).status_code == 200
        samples = [timed(lambda c=client, p=path, h=headers: c.get(p, headers=h)) for _ in range(50)]
        p50, p99 = percentiles(samples)
        print(f"{label:<28} {p50:8.2f} {p99:8.2f}")


def make_app(tmp: Path, redis_url: str):
    """The panel on a fresh, migrated SQLite database in tmp/data."""
    from flask_migrate import upgrade

    from app import create_app
    from app.config import TestConfig

    (tmp / "data").mkdir()
    os.environ.pop("TEST_DATABASE_URL", None)
    app = create_app(TestConfig(tmp / "data", redis_url))
    app.config["TESTING"] = False
    with app.app_context():
        upgrade()
    logging.getLogger("app").setLevel(logging.WARNING)
    return app


def main() -> None:
    """Start Redis, the app on a fresh SQLite database, and run both measurements."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--creates", type=int, default=50)
    parser.add_argument("--domains", type=int, default=10_000)
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--others", type=int, default=1000,
                        help="web domains of another user added to the node for the crowded-node figures (0: none)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        redis, redis_url = start_redis(tmp)
        try:
            app = make_app(tmp, redis_url)
            freeze_loaded()  # as each web worker does once it has loaded the app (app/gunicorn_conf.py)
            token = proxy_overhead(app, tmp, redis_url, args.calls, args.creates, args.others)
            master_alone(app, token, args.creates)
            list_page_at_scale(app, args.domains, args.nodes)
        finally:
            redis.terminate()
            redis.wait(10)


if __name__ == "__main__":
    main()
