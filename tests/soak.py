"""Soak: about 60 s of mixed load on a whole panel with four lab nodes, a link cut and a worker SIGKILL.

Run it with `make soak` (= `.venv/bin/python -m tests.soak`; root, and a running lab with at least
hf-node<first+3>: it never starts, stops or recreates the lab). Options: --seconds (60), --clients (50),
--first-node (5: hf-node5..hf-node8). The nodes used are taken back to fresh servers first.

What it does:
1. Starts a whole panel (tests.cluster.labpanel.LabPanel, as `make run` starts it, with three job workers) with
   LOGIN_RATE_LIMIT raised to 100000/minute: every client logs in from 127.0.0.1, and the default 10/minute
   per address would answer most logins with 429 (the limit itself is tested in tests/security).
2. Adds the four nodes through the API with role `web`, waits until each is `ready`, creates three users
   with the web role (placed on the first three nodes; the third one's node is the one that gets cut) and
   gives each an API token made through the account page's HTML form.
3. Load for --seconds: --clients threads, each a requests.Session that logs in through the HTML form
   (CSRF token from the page) and logs out and in again now and then. A fifth of them add firewall rules
   and delete every other one they added (admin token), a fifth do the same with scheduler entries, a fifth
   act as a panel user creating and deleting web domains (the user's token), the rest view the main menus'
   pages and read the API. Writes are bounded (--writes per client).
   Faults, each bounded and stopping by itself: at 15 % of the run one node's link is cut (node.cut()) for
   15 s and healed; at 50 % one of the panel's default-queue workers (one RQ reports running a job, if any)
   is SIGKILLed and the runner starts another, as `make run` does; a run with no worker to kill fails, and
   so does one where recovery finished any operation but the killed worker's as "the worker stopped".
4. After the load: waits (at most 120 s) until no desync is left and no operation is queued or running,
   then reads every list back: the master's through the API, each node's from its real files
   (`nft list table inet hostfleet`, /etc/cron.d/hostfleet, /etc/nginx/hostfleet/<owner>/<domain>.conf and
   an HTTP request with the domain as Host to the node's nginx; the panel's own local node from its agent's
   root under the data dir).

What is counted:
- requests: every HTTP request a client made during the load (setup and the final checks are not).
- 5xx: every answer >= 500 and every request with no answer (connection error, 60 s timeout), except a
  502/503/504 to a web-domain call of the user whose node was cut, made while that node was cut or not yet
  `ready` again: the API documents that answer for user data on an unreachable node (shown as "excused").
- lost changes: per changed item (a firewall rule, a scheduler entry, a web domain), its expected state is
  the one its last committed change left: an add or delete is committed when it got a 2xx and, for the
  system lists (202 + an operation), when GET /api/v1/operations/<id> reports `succeeded` or `partial`
  (a `failed`/`refused` operation changed nothing on the master). An item is lost when it is
  expected present and missing on the master or on any target node (every node for the system lists, the
  holding node for a web domain), or expected absent (deleted with a 2xx, or never committed) and still on
  the master or, for the system lists, on any node. An operation still queued or running after the final
  wait is counted lost too (it cannot be verified). A web domain that only its node holds after a create
  that got no 2xx (the node applied it but the answer was lost) is shown as an orphan, not counted lost.
  A web-domain change answered 504 (the API says the node may have applied it and the index follows the node
  at its next poll) leaves the item in doubt until a later committed change: it is lost only when the master
  and its node disagree on it.
- desyncs left: rows of GET /api/v1/sync after the final wait.

Prints a table; the last line reads exactly `soak: <N> requests, <N> 5xx, <N> lost changes, <N> desyncs
left`, and the exit code is non-zero unless the last three are 0.
"""

from __future__ import annotations

import argparse
import random
import re
import secrets
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

COMMITTED = {"succeeded", "partial"}
UNFINISHED = {"queued", "running"}
REQUEST_TIMEOUT = 60
FINAL_WAIT_S = 120
CUT_S = 15
USER_PAGES = ("/", "/domains/web", "/domains/names", "/mail/domains", "/mail/mailboxes", "/operations/")
ADMIN_PAGES = USER_PAGES + ("/accounts/users", "/mail/whitelist", "/mail/blacklist", "/system/firewall",
                            "/system/scheduler", "/cluster/nodes", "/cluster/policies", "/cluster/sync")
USER_READS = ("/api/v1/webdomains", "/api/v1/operations", "/api/v1/domains")
ADMIN_READS = ("/api/v1/nodes", "/api/v1/firewall", "/api/v1/scheduler", "/api/v1/operations", "/api/v1/sync",
               "/api/v1/users", "/api/v1/policies")
KINDS = ("login", "page", "api read", "op poll", "firewall add", "firewall delete", "scheduler add",
         "scheduler delete", "webdomain add", "webdomain delete")


# ---------------------------------------------------------------- bookkeeping (tested in tests/test_soak_smoke.py)


@dataclass
class Sample:
    """One request: its kind, HTTP status (0: no answer), duration and when it ran."""

    kind: str
    status: int
    seconds: float
    started: float
    excused: bool = False
    detail: str = ""


@dataclass
class Change:
    """One write a client made: what, to which item, its answer and (system lists) its operation's outcome."""

    kind: str  # firewall | scheduler | webdomain
    key: str  # the rule's comment, the entry's command tag, the domain name
    action: str  # add | delete
    status: int
    seq: int
    op_id: int | None = None
    outcome: str | None = None  # the operation's final status; None for a web domain
    node: str | None = None  # web domain: the node holding it

    @property
    def committed(self) -> bool:
        """The change took effect on the master (a 2xx, and for a system list a succeeded/partial operation)."""
        if not 200 <= self.status < 300:
            return False
        return self.kind == "webdomain" or self.outcome in COMMITTED

    @property
    def in_doubt(self) -> bool:
        """A web-domain change answered 504: the API says the node may have applied it and the index follows
        the node at its next poll, so either outcome is right as long as the master and the node agree."""
        return self.kind == "webdomain" and self.status == 504

    @property
    def unresolved(self) -> bool:
        """Accepted, but its operation never finished: nobody can say what it did."""
        return self.kind != "webdomain" and 200 <= self.status < 300 and self.outcome in UNFINISHED | {None}


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of values; nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def count_5xx(samples: list[Sample]) -> int:
    """Answers >= 500 and requests with no answer, except the excused ones."""
    return sum(1 for s in samples if (s.status >= 500 or s.status == 0) and not s.excused)


def expected_states(changes: list[Change]) -> dict[tuple[str, str], dict]:
    """Per (kind, key): whether it must exist at the end, where (web domain), and whether it can be checked."""
    states: dict[tuple[str, str], dict] = {}
    for change in sorted(changes, key=lambda c: c.seq):
        state = states.setdefault((change.kind, change.key), {"present": False, "node": None, "unresolved": False,
                                                              "committed": False, "in_doubt": False})
        if change.unresolved:
            state["unresolved"] = True
        if change.committed:
            state["present"] = change.action == "add"
            state["committed"] = True
            state["in_doubt"] = False
            if change.node:
                state["node"] = change.node
        else:
            state["in_doubt"] = state["in_doubt"] or change.in_doubt
            if change.node and state["node"] is None:
                state["node"] = change.node
    return states


def lost_changes(changes: list[Change], master: dict[str, set[str]],
                 nodes: dict[str, dict[str, set[str]]]) -> tuple[list[str], list[str]]:
    """(lost, orphans): one line per item not where its committed changes left it (see the module doc).

    master: kind -> keys the master holds; nodes: kind -> node name -> keys read from that node's files
    (for web domains, only the nodes that were read; the item's holding node is the target).
    """
    lost, orphans = [], []
    for (kind, key), state in sorted(expected_states(changes).items()):
        if state["unresolved"]:
            lost.append(f"{kind} {key}: its operation never finished")
            continue
        on_master = key in master.get(kind, set())
        per_node = nodes.get(kind, {})
        if kind == "webdomain":
            targets = [state["node"]] if state["node"] else []
        else:
            targets = sorted(per_node)
        holding = [n for n in targets if key in per_node.get(n, set())]
        if state["in_doubt"]:
            # Present or absent, the master's index must say what the holding node holds.
            if targets and on_master != bool(holding):
                where = "the master" if on_master else targets[0]
                lost.append(f"{kind} {key}: answered 504 (may have been applied) and only {where} holds it")
            continue
        if state["present"]:
            where = (["master"] if not on_master else []) + [n for n in targets if n not in holding]
            if where:
                lost.append(f"{kind} {key}: added (2xx, committed) but missing on {', '.join(where)}")
        else:
            why = "deleted (2xx, committed)" if state["committed"] else "never committed"
            if on_master:
                lost.append(f"{kind} {key}: {why} but still on the master")
            elif holding and kind != "webdomain":
                lost.append(f"{kind} {key}: {why} but still on {', '.join(holding)}")
            elif holding:
                orphans.append(f"{kind} {key}: {why}, not on the master, left on {', '.join(holding)}")
    return lost, orphans


def final_line(requests_n: int, errors: int, lost: int, desyncs: int) -> str:
    """The soak's last line."""
    return f"soak: {requests_n} requests, {errors} 5xx, {lost} lost changes, {desyncs} desyncs left"


def exit_code(errors: int, lost: int, desyncs: int) -> int:
    """0 only when nothing went wrong."""
    return 0 if errors == 0 and lost == 0 and desyncs == 0 else 1


WORKER_STOPPED = "the worker stopped"


def unexplained_stops(messages: dict[int, str], killed_op: int | None) -> list[str]:
    """Operations recovery finished because their worker stopped, other than the one the SIGKILLed
    worker was running: the soak kills one worker, so any other such stop is a failure of the panel."""
    return [f"operation {op_id} finished as if its worker had stopped, but the killed worker was "
            f"{'running operation ' + str(killed_op) if killed_op else 'not running one'}: {message}"
            for op_id, message in sorted(messages.items()) if WORKER_STOPPED in message and op_id != killed_op]


def table(samples: list[Sample]) -> list[str]:
    """Per kind: requests, p50/p99 (ms), 5xx, excused, 4xx, by status."""
    lines = ["| kind | requests | p50 ms | p99 ms | 5xx | excused | 4xx | statuses |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    kinds = [k for k in KINDS if any(s.kind == k for s in samples)]
    kinds += sorted({s.kind for s in samples} - set(kinds))
    for kind in kinds + ["all"]:
        rows = [s for s in samples if kind in ("all", s.kind)]
        times = [s.seconds * 1000 for s in rows]
        statuses: dict[int, int] = {}
        for s in rows:
            statuses[s.status] = statuses.get(s.status, 0) + 1
        spread = " ".join(f"{code or 'none'}:{n}" for code, n in sorted(statuses.items()))
        lines.append(f"| {kind} | {len(rows)} | {percentile(times, 50):.0f} | {percentile(times, 99):.0f} | "
                     f"{count_5xx(rows)} | {sum(s.excused for s in rows)} | "
                     f"{sum(1 for s in rows if 400 <= s.status < 500)} | {spread} |")
    return lines


def keys_in(text: str, run: str) -> set[str]:
    """The soak's item tags of this run found in a file's text."""
    return set(re.findall(rf"\bsoak{run}x\d{{2}}x\d{{2}}\b", text))


def firewall_port(key: str) -> int:
    """The TCP port of the rule a key names (nft keeps no comment: the node's table is read by port)."""
    _, client, write = key.rsplit("x", 2)
    return 41000 + int(client) * 100 + int(write)


def firewall_keys(text: str, run: str, clients: int, writes: int) -> set[str]:
    """Keys of this run's rules in `nft list table` output, found by their ports."""
    by_port = {firewall_port(k): k for k in (f"soak{run}x{c:02d}x{w:02d}" for c in range(clients)
                                              for w in range(1, writes + 1))}
    return {by_port[int(p)] for p in re.findall(r"\btcp dport (\d+) accept\b", text) if int(p) in by_port}


def cron_keys(text: str, run: str) -> set[str]:
    """Tags on the job lines of a cron.d file (comment lines left out)."""
    return keys_in("\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")), run)


# ---------------------------------------------------------------- the load


class Recorder:
    """Thread-safe store of samples and changes, and the cut window for excusing answers."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.samples: list[Sample] = []
        self.changes: list[Change] = []
        self.seq = 0
        self.cut_from: float | None = None
        self.cut_until: float | None = None
        self.cut_node: str | None = None

    def sample(self, sample: Sample) -> None:
        with self.lock:
            self.samples.append(sample)

    def change(self, **kwargs) -> Change:
        with self.lock:
            self.seq += 1
            change = Change(seq=self.seq, **kwargs)
            self.changes.append(change)
            return change

    def in_cut(self, started: float, ended: float) -> bool:
        """The request overlapped the time the cut node was cut or not yet ready again."""
        if self.cut_from is None:
            return False
        until = self.cut_until if self.cut_until is not None else float("inf")
        return started <= until and ended >= self.cut_from


class Client(threading.Thread):
    """One simulated client: logs in through the form, views pages, reads and (by role) writes."""

    def __init__(self, index: int, soak: Soak) -> None:
        super().__init__(name=f"soak-client-{index}", daemon=True)
        self.index, self.soak = index, soak
        self.rng = random.Random(index)
        self.role = ("firewall", "scheduler", "webdomain", "reader", "reader")[index % 5]
        self.user = soak.users[index % len(soak.users)] if self.role == "webdomain" or index % 2 else None
        if self.role in ("firewall", "scheduler"):
            self.user = None
        self.session = requests.Session()
        self.writes = 0
        self.made: list[str] = []

    # one request, recorded
    def call(self, kind: str, method: str, path: str, token: str | None = None, **kwargs) -> requests.Response | None:
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        started = time.monotonic()
        try:
            response = self.session.request(method, self.soak.url + path, headers=headers,
                                            timeout=REQUEST_TIMEOUT, allow_redirects=False, **kwargs)
            status = response.status_code
        except requests.RequestException:
            response, status = None, 0
        ended = time.monotonic()
        excused = (kind.startswith("webdomain") and status in (502, 503, 504) and self.user is not None
                   and self.user["node"] == self.soak.recorder.cut_node and self.soak.recorder.in_cut(started, ended))
        detail = f"{method} {path}: " + (response.text[:300] if response is not None else "no answer")
        self.soak.recorder.sample(Sample(kind, status, ended - started, started, excused,
                                         detail if status >= 500 or status == 0 else ""))
        return response

    @property
    def token(self) -> str:
        return self.user["token"] if self.user else self.soak.admin_token

    def login(self) -> None:
        """GET the form, POST it with the CSRF token from the page."""
        user = self.user or {"name": "admin", "password": self.soak.admin_password}
        name, password = user["name"], user["password"]
        page = self.call("login", "GET", "/login")
        match = page is not None and re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text)
        if not match:
            return
        self.call("login", "POST", "/login", data={"csrf_token": match.group(1), "username": name,
                                                   "password": password})

    def logout(self) -> None:
        """POST /logout with the CSRF token of a page."""
        page = self.call("page", "GET", "/operations/")
        match = page is not None and re.search(r'"X-CSRFToken": "([^"]+)"', page.text)
        if match:
            self.call("login", "POST", "/logout", data={"csrf_token": match.group(1)})

    def run(self) -> None:
        try:
            self.login()
            steps = 0
            while time.monotonic() < self.soak.deadline:
                steps += 1
                if steps % 25 == 0:
                    self.logout()
                    self.login()
                elif self.role in ("firewall", "scheduler", "webdomain") and self.writes < self.soak.writes \
                        and steps % 3 == 0:
                    self.write()
                elif self.rng.random() < 0.5:
                    pages = ADMIN_PAGES if self.user is None else USER_PAGES
                    self.call("page", "GET", self.rng.choice(pages))
                else:
                    reads = ADMIN_READS if self.user is None else USER_READS
                    self.call("api read", "GET", self.rng.choice(reads), token=self.token)
                time.sleep(self.rng.uniform(0.05, 0.3))
        except Exception as exc:  # a client bug must not look like a clean run
            self.soak.failures.append(f"{self.name}: {exc!r}")

    # writes
    def key(self) -> str:
        return f"soak{self.soak.run}x{self.index:02d}x{self.writes:02d}"

    def write(self) -> None:
        """Add an item; delete every other item added, once its add is known committed."""
        self.writes += 1
        if self.role == "webdomain":
            self.write_webdomain()
        else:
            self.write_list(self.role)

    def wait_operation(self, op_id: int) -> str | None:
        """Poll the operation until it finished or the load ends; its status then (None: no answer)."""
        status = None
        while time.monotonic() < self.soak.deadline:
            response = self.call("op poll", "GET", f"/api/v1/operations/{op_id}", token=self.token)
            if response is not None and response.status_code == 200:
                operation = response.json()
                status = operation["status"]
                if status in ("failed", "refused"):
                    nodes = "; ".join(f"{n['node']}: {n['outcome']} {n.get('error') or ''}".strip()
                                      for n in operation.get("nodes", []) if n["outcome"] != "applied")
                    self.soak.notes.append(f"operation {op_id} ({operation['title']}) {status}: "
                                           f"{operation['message']}" + (f" [{nodes}]" if nodes else ""))
                if status not in UNFINISHED:
                    return status
            time.sleep(0.5)
        return status

    def write_list(self, name: str) -> None:
        key = self.key()
        if name == "firewall":
            body = {"action": "accept", "protocol": "tcp", "ports": str(firewall_port(key)), "comment": key}
        else:
            body = {"schedule": f"{self.writes} 3 * * *", "user": "root", "command": f"/bin/true {key}",
                    "comment": key}
        response = self.call(f"{name} add", "POST", f"/api/v1/{name}", token=self.token, json=body)
        if response is None:
            return
        change = self.soak.recorder.change(kind=name, key=key, action="add", status=response.status_code,
                                           op_id=_op_id(response))
        if change.op_id is None:
            return
        change.outcome = self.wait_operation(change.op_id)
        if change.outcome not in COMMITTED or self.writes % 2:
            return
        listing = self.call("api read", "GET", f"/api/v1/{name}", token=self.token)
        if listing is None or listing.status_code != 200:
            return
        field_name = "comment"
        row = next((r for r in listing.json()["items"] if r.get(field_name) == key), None)
        if row is None:
            return
        response = self.call(f"{name} delete", "DELETE", f"/api/v1/{name}/{row['id']}", token=self.token)
        if response is None:
            return
        change = self.soak.recorder.change(kind=name, key=key, action="delete", status=response.status_code,
                                           op_id=_op_id(response))
        if change.op_id is not None:
            change.outcome = self.wait_operation(change.op_id)

    def write_webdomain(self) -> None:
        key = self.key()
        name = f"{key}.soak.test"
        # The soak users hold no zone (web role only): an administrator adds their sites, as for names whose DNS
        # is elsewhere (the name registry wants the zone, a proof of control or an administrator).
        response = self.call("webdomain add", "POST", "/api/v1/webdomains", token=self.soak.admin_token,
                             json={"name": name, "owner": self.user["name"]})
        if response is None:
            self.soak.recorder.change(kind="webdomain", key=name, action="add", status=0, node=self.user["node"])
            return
        body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        self.soak.recorder.change(kind="webdomain", key=name, action="add", status=response.status_code,
                                  node=body.get("node") or self.user["node"])
        if response.status_code != 201 or self.writes % 2:
            return
        response = self.call("webdomain delete", "DELETE", f"/api/v1/webdomains/{body['id']}", token=self.token)
        self.soak.recorder.change(kind="webdomain", key=name, action="delete",
                                  status=response.status_code if response is not None else 0, node=body.get("node"))


def _op_id(response: requests.Response) -> int | None:
    """The operation id of a 202."""
    if response.status_code != 202:
        return None
    return response.json()["operation"]["id"]


# ---------------------------------------------------------------- the run


@dataclass
class Soak:
    """Everything one run needs and finds."""

    seconds: float
    clients: int
    writes: int
    first_node: int
    run: str = field(default_factory=lambda: secrets.token_hex(2))
    recorder: Recorder = field(default_factory=Recorder)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    url: str = ""
    admin_token: str = ""
    admin_password: str = ""
    users: list[dict] = field(default_factory=list)
    deadline: float = 0.0
    killed_op: int | None = None


def say(message: str) -> None:
    """A progress line."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def setup(soak: Soak, panel, lab_nodes) -> dict[str, int]:
    """Add the nodes (role web), wait until ready, create the users and their tokens. Node name -> id."""
    ids: dict[str, int] = {}
    names = [f"soak{i + 1}" for i in range(len(lab_nodes))]

    def add(i: int) -> None:
        response = panel.add(lab_nodes[i], names[i], roles=["web"])
        if response.status_code != 202:
            raise RuntimeError(f"adding {lab_nodes[i].name}: {response.status_code} {response.text}")
        ids[names[i]] = response.json()["node"]["id"]
        panel.wait_state(ids[names[i]], "ready", timeout=900, interval=1.0)

    with ThreadPoolExecutor(max_workers=len(lab_nodes)) as pool:
        list(pool.map(add, range(len(lab_nodes))))
    ids = {name: ids[name] for name in names}  # in the lab nodes' order, not in the order they got ready
    for i in range(3):
        name, password = f"soakuser{i + 1}", secrets.token_urlsafe(18)
        node = names[i % len(names)]
        response = panel.request("POST", "/api/v1/users", {"name": name, "password": password, "roles": ["web"],
                                                           "nodes": {"web": ids[node]}})
        if response.status_code != 201:
            raise RuntimeError(f"creating {name}: {response.status_code} {response.text}")
        soak.users.append({"name": name, "password": password, "node": node, "token": user_token(soak.url, name,
                                                                                                 password)})
    return ids


def user_token(url: str, name: str, password: str) -> str:
    """An API token made the way a user makes one: log in, the account page's form."""
    session = requests.Session()
    page = session.get(url + "/login", timeout=REQUEST_TIMEOUT)
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)
    session.post(url + "/login", data={"csrf_token": csrf, "username": name, "password": password},
                 timeout=REQUEST_TIMEOUT)
    page = session.get(url + "/account/tokens", timeout=REQUEST_TIMEOUT)
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)
    page = session.post(url + "/account/tokens", data={"csrf_token": csrf, "name": "soak"}, timeout=REQUEST_TIMEOUT)
    match = re.search(r'<code id="new-token">([^<]+)</code>', page.text)
    if not match:
        raise RuntimeError(f"no token for {name}: {page.status_code}")
    return match.group(1)


def faults(soak: Soak, panel, cut_node, cut_name: str, node_id: int, started: float) -> None:
    """Cut one node's link for CUT_S and heal it; SIGKILL one default worker and start another."""
    recorder = soak.recorder
    try:
        time.sleep(max(0.0, started + soak.seconds * 0.15 - time.monotonic()))
        recorder.cut_node = cut_name
        recorder.cut_from = time.monotonic()
        cut_node.cut()
        say(f"fault: {cut_node.name} ({cut_name}) link cut")
        time.sleep(CUT_S)
    finally:
        cut_node.heal()
    say(f"fault: {cut_node.name} healed after {time.monotonic() - recorder.cut_from:.1f} s")
    time.sleep(max(0.0, started + soak.seconds * 0.5 - time.monotonic()))
    from tests.cluster.labpanel import kill_processes
    from tests.conftest import wait_until

    victim, registered = busy_worker(panel)
    if victim is None:
        soak.failures.append("fault: the panel ran no default worker to SIGKILL")
    else:
        before = {p.pid for p in panel.default_workers()}
        kill_processes([victim])
        killed_at = time.monotonic() - started
        # Read after the kill: the job it ran when it died (it may have moved on since it was picked).
        job_id = registered.get_current_job_id() if registered is not None else None
        busy = f"running job {job_id}" if job_id else "idle"
        soak.killed_op = list_change_of(panel, job_id)
        # The runner restarts a worker that died, as it does in production (`make run`).
        wait_until(lambda: {p.pid for p in panel.default_workers()} - before, 60, interval=0.2,
                   what="the runner to start a worker in place of the killed one")
        soak.notes.append(f"worker pid {victim.pid} ({busy}) SIGKILLed at {killed_at:.0f} s; the runner started "
                          f"another {time.monotonic() - started - killed_at:.1f} s later")
        say(f"fault: {soak.notes[-1]}")
    ready_deadline = time.monotonic() + 90
    while time.monotonic() < ready_deadline:
        try:
            if panel.node(node_id)["state"] == "ready":
                break
        except requests.RequestException:
            pass
        time.sleep(1)
    recorder.cut_until = time.monotonic()
    say(f"fault: {cut_name} ready again {recorder.cut_until - recorder.cut_from:.0f} s after the cut")


def busy_worker(panel) -> tuple[object | None, object | None]:
    """One of the panel's default-queue workers, preferring one RQ says is running a job; and RQ's record
    of that worker (None if RQ has none), whose current job a dead worker keeps."""
    from rq import Worker

    workers = panel.default_workers()
    registered = {w.pid: w for w in Worker.all(connection=panel.redis())}
    for proc in workers:
        if proc.pid in registered and registered[proc.pid].get_current_job_id():
            return proc, registered[proc.pid]
    return (workers[0], registered.get(workers[0].pid)) if workers else (None, None)


def list_change_of(panel, job_id: str | None) -> int | None:
    """The operation a distributed request's RQ job runs (None for another job, or none)."""
    job = panel.panel.job_queue().fetch_job(job_id) if job_id else None
    if job is None:
        return None
    return job.args[0] if job.func_name.endswith(".distribute_list_change") and job.args else None


def settle(soak: Soak, panel, changes: list[Change]) -> int:
    """Wait (bounded) until no desync is left and no operation runs; resolve every operation's status.
    Returns the desyncs left."""
    deadline = time.monotonic() + FINAL_WAIT_S
    desyncs: list = []
    while True:
        desyncs = panel.request("GET", "/api/v1/sync").json()["items"]
        ops = panel.request("GET", "/api/v1/operations").json()["items"]
        busy = [o for o in ops if o["status"] in UNFINISHED]
        for change in changes:
            if change.op_id is not None and change.outcome in UNFINISHED | {None}:
                change.outcome = panel.operation(change.op_id)["status"]
        busy += [c for c in changes if c.op_id is not None and c.outcome in UNFINISHED]
        if not desyncs and not busy:
            return 0
        if time.monotonic() > deadline:
            say(f"after {FINAL_WAIT_S} s: {len(desyncs)} desyncs, {len(busy)} operations unfinished")
            for d in desyncs:
                say(f"  desync {d['node']} {d['list']}: attempts {d['attempts']}, {d['last_error']}")
            return len(desyncs)
        for node in panel.request("GET", "/api/v1/nodes").json()["items"]:
            panel.clear_unowned(node)
        time.sleep(1)


def read_back(soak: Soak, panel, lab_nodes, names: list[str]) -> tuple[dict, dict, list[str]]:
    """(master, nodes, notes): every list as the master and each node's real files hold it."""
    run = soak.run
    master = {
        "firewall": {r["comment"] for r in panel.request("GET", "/api/v1/firewall").json()["items"]},
        "scheduler": set().union(*[keys_in(r["command"], run)
                                   for r in panel.request("GET", "/api/v1/scheduler").json()["items"]]),
        "webdomain": {d["name"] for d in panel.request("GET", "/api/v1/webdomains").json()["items"]},
    }
    nodes: dict[str, dict[str, set[str]]] = {"firewall": {}, "scheduler": {}, "webdomain": {}}
    notes: list[str] = []
    local = panel.data / "local-node" / "root"
    nodes["firewall"]["local"] = keys_in(_read(local / "etc/hostfleet/firewall.nft"), run)
    nodes["scheduler"]["local"] = cron_keys(_read(local / "etc/cron.d/hostfleet"), run)
    for name, node in zip(names, lab_nodes, strict=True):
        nodes["firewall"][name] = firewall_keys(node.exec("nft list table inet hostfleet", check=False).stdout,
                                                run, soak.clients, soak.writes)
        nodes["scheduler"][name] = cron_keys(node.exec("cat /etc/cron.d/hostfleet", check=False).stdout, run)
        files = node.exec("find /etc/nginx/hostfleet -name '*.conf'", check=False).stdout.split()
        domains = {Path(f).name[:-len(".conf")] for f in files if f.endswith(".soak.test.conf")}
        served = set()
        for domain in domains:
            try:
                answer = requests.get(f"http://{node.address}/", headers={"Host": domain}, timeout=10)
                if answer.status_code == 200:
                    served.add(domain)
                else:
                    notes.append(f"{name}: nginx answers {answer.status_code} for {domain}")
            except requests.RequestException as exc:
                notes.append(f"{name}: nginx did not answer for {domain}: {exc}")
        nodes["webdomain"][name] = domains & served
    return master, nodes, notes


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def main(argv: list[str] | None = None) -> int:
    """Run the soak; print the table and the last line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=50, choices=range(1, 100), metavar="1..99")
    parser.add_argument("--first-node", type=int, default=5, help="use hf-node<N> .. hf-node<N+3>")
    parser.add_argument("--writes", type=int, default=4, choices=range(1, 100), metavar="1..99",
                        help="writes per writing client")
    parser.add_argument("--keep", action="store_true", help="keep the panel's data directory")
    args = parser.parse_args(argv)

    from tests.cluster.labpanel import LabPanel, reset
    from tests.lab.lab import Lab, preflight

    reason = preflight()
    if reason:
        print(f"soak: cannot run: {reason}", file=sys.stderr)
        return 2
    lab = Lab()
    wanted = [f"hf-node{i}" for i in range(args.first_node, args.first_node + 4)]
    present = {n.name for n in lab.nodes} if lab.is_up() else set()
    if not set(wanted) <= present:
        print(f"soak: the lab must already run {', '.join(wanted)} (`make lab N={args.first_node + 3}`); "
              "the soak never starts or stops it", file=sys.stderr)
        return 2
    lab_nodes = [lab.node(n) for n in wanted]
    soak = Soak(args.seconds, args.clients, args.writes, args.first_node)
    say(f"run {soak.run}: resetting {', '.join(wanted)}")
    for node in lab_nodes:
        node.heal()
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(reset, lab_nodes))
    work = Path(tempfile.mkdtemp(prefix="hostfleet-soak-"))
    panel = LabPanel(work / "panel", lab.repo_line, workers=3, poll_interval_s=2,
                     env={"LOGIN_RATE_LIMIT": "100000 per minute"})
    try:
        panel.start()
        soak.url, soak.admin_token, soak.admin_password = panel.url, panel.token, panel.panel.password
        say("panel started; adding the nodes with role web")
        ids = setup(soak, panel, lab_nodes)
        names = list(ids)
        say(f"nodes ready: {', '.join(f'{n}={lab_nodes[i].name}' for i, n in enumerate(names))}; users: "
            + ", ".join(f"{u['name']}@{u['node']}" for u in soak.users))
        cut_index = 2
        started = time.monotonic()
        soak.deadline = started + args.seconds
        clients = [Client(i, soak) for i in range(args.clients)]
        fault = threading.Thread(target=faults, name="soak-faults", daemon=True,
                                 args=(soak, panel, lab_nodes[cut_index], names[cut_index], ids[names[cut_index]],
                                       started))
        fault.start()
        for client in clients:
            client.start()
        say(f"load: {args.clients} clients for {args.seconds:.0f} s")
        for client in clients:
            client.join(max(1.0, soak.deadline + REQUEST_TIMEOUT + 5 - time.monotonic()))
        stuck = [c.name for c in clients if c.is_alive()]
        fault.join(max(1.0, started + args.seconds + 150 - time.monotonic()))
        lab_nodes[cut_index].heal()
        load_s = time.monotonic() - started
        samples = list(soak.recorder.samples)
        changes = list(soak.recorder.changes)
        say(f"load done in {load_s:.0f} s: {len(samples)} requests, {len(changes)} changes; settling")
        desyncs = settle(soak, panel, changes)
        finished = {c.op_id: panel.operation(c.op_id)["message"] or "" for c in changes if c.op_id is not None}
        soak.failures += unexplained_stops(finished, soak.killed_op)
        master, nodes, notes = read_back(soak, panel, lab_nodes, names)
        lost, orphans = lost_changes(changes, master, nodes)
    finally:
        for node in lab_nodes:
            node.heal()
        panel.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    print()
    print("\n".join(table(samples)))
    print()
    committed = [c for c in changes if c.committed]
    by_outcome: dict[str, int] = {}
    for c in changes:
        label = c.outcome or str(c.status)
        by_outcome[f"{c.kind} {c.action} {label}"] = by_outcome.get(f"{c.kind} {c.action} {label}", 0) + 1
    print(f"changes: {len(changes)} made, {len(committed)} committed; "
          + ", ".join(f"{k}: {v}" for k, v in sorted(by_outcome.items())))
    present = {k: len(v) for k, v in master.items()}
    print(f"at the end the master holds this run's items: {present}")
    for line in soak.notes + notes + soak.failures + [f"stuck client: {s}" for s in stuck]:
        print(f"note: {line}")
    for line in orphans:
        print(f"orphan: {line}")
    for line in lost:
        print(f"LOST: {line}")
    for s in samples:
        if (s.status >= 500 or s.status == 0) and not s.excused:
            print(f"5xx: {s.kind} {s.status} after {s.seconds:.2f} s at {s.started - started:.1f} s: {s.detail}")
    errors = count_5xx(samples)
    print(final_line(len(samples), errors, len(lost), desyncs))
    code = exit_code(errors, len(lost), desyncs)
    return code if not (soak.failures or stuck) else max(code, 1)


if __name__ == "__main__":
    sys.exit(main())
