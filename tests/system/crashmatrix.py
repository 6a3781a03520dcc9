"""What the crash-point matrix checks and prints, shared by the loopback matrix and the lab's."""

from __future__ import annotations

from agent.ops import firewall
from app.failpoints import POINTS
from tests.system.conftest import firewall_file

DR_POINTS = [p for p in POINTS if p.startswith("dr.")]
# What the master must hold after each crash: committed only once the commit transaction ran.
EXPECTED_MASTER = {p: "old" for p in DR_POINTS} | {"dr.after_commit": "new", "sync.after_push": "new",
                                                   "agent killed mid-apply": "new"}


def rendered(rows: list[dict], closed_loopback_uids: list[int] | None = None) -> str:
    """The nft file an agent writes for these rows (with its config's closed_loopback_uids)."""
    return firewall.render([firewall.validate_row(r) for r in rows], closed_loopback_uids).decode()


def judge(old: dict, master: dict, committed: bool, status: str, message: str) -> dict:
    """Which list the master holds after the crash, checked against what the operation recorded."""
    state = "old" if (master["version"], master["hash"]) == (old["version"], old["hash"]) else "new"
    assert state == "old" or master["version"] == old["version"] + 1
    assert committed == (state == "new")
    if state == "new":
        assert status in ("succeeded", "partial"), message
    else:
        assert status == "failed" and "unchanged" in message, message
    return {"master": state, "status": status}


def check_converged(cluster, app, nodes, operation_id: int, old: dict) -> dict:
    """Every node's agent and file hold the master's firewall list, no desync is left, and the master's list
    (old or new) agrees with the operation's outcome; returns the facts for the table."""
    from app.extensions import db
    from app.models import ListChange, Operation

    master = cluster.master("firewall")
    for node in nodes:
        held = cluster.held(node, "firewall")
        assert [held[k] for k in ("version", "hash", "rows")] == [master[k] for k in ("version", "hash", "rows")], node
        assert firewall_file(cluster, node) == rendered(master["rows"]), node
    assert cluster.desyncs() == set()
    with app.app_context():
        operation = db.session.get(Operation, operation_id)
        change = db.session.get(ListChange, operation_id)
        status, message = operation.status, operation.message
        committed = bool(change and change.committed)
    return judge(old, master, committed, status, message)


def print_matrix(table: list[tuple[str, dict]], capsys) -> None:
    """The matrix as a table: crash point × (master after, operation status, outcome)."""
    with capsys.disabled():
        print("\n\ncrash point                          | master after | operation | outcome")
        print("-------------------------------------|--------------|-----------|----------")
        for point, facts in table:
            print(f"{point:<37}| {facts['master']:<13}| {facts['status']:<10}| converged")


def check_expected(table: list[tuple[str, dict]]) -> None:
    """Every cell holds the list the crash point allows (the part before " (" names the point)."""
    for point, facts in table:
        assert facts["master"] == EXPECTED_MASTER[point.split(" (")[0]], (point, facts)
