"""The soak's bookkeeping on synthetic inputs (the soak itself needs the lab: `make soak`)."""

from tests.soak import (
    Change,
    Sample,
    count_5xx,
    cron_keys,
    exit_code,
    final_line,
    firewall_keys,
    firewall_port,
    keys_in,
    lost_changes,
    percentile,
    table,
    unexplained_stops,
)

NODES = ("local", "soak1", "soak2")


def _everywhere(keys: set[str]) -> dict[str, set[str]]:
    return {n: set(keys) for n in NODES}


def test_final_line_reads_exactly_and_exit_code_needs_three_zeros():
    """The last line's wording, and a non-zero exit for any 5xx, lost change or desync left."""
    assert final_line(1234, 0, 0, 0) == "soak: 1234 requests, 0 5xx, 0 lost changes, 0 desyncs left"
    assert exit_code(0, 0, 0) == 0
    assert exit_code(1, 0, 0) == exit_code(0, 1, 0) == exit_code(0, 0, 1) == 1


def test_committed_adds_and_deletes_in_place_are_not_lost():
    """A 202 whose operation succeeded or was partial is committed; found everywhere it must be: nothing lost."""
    changes = [
        Change("firewall", "a", "add", 202, 1, op_id=1, outcome="succeeded"),
        Change("firewall", "b", "add", 202, 2, op_id=2, outcome="partial"),
        Change("firewall", "b", "delete", 202, 3, op_id=3, outcome="succeeded"),
        Change("webdomain", "w.test", "add", 201, 4, node="soak2"),
    ]
    master = {"firewall": {"a"}, "webdomain": {"w.test"}}
    nodes = {"firewall": _everywhere({"a"}), "webdomain": {"soak1": set(), "soak2": {"w.test"}}}
    assert lost_changes(changes, master, nodes) == ([], [])


def test_missing_on_one_node_or_still_present_after_delete_is_lost():
    """A committed add missing on one node, and a committed delete still on the master, each count once."""
    changes = [
        Change("scheduler", "a", "add", 202, 1, op_id=1, outcome="succeeded"),
        Change("scheduler", "b", "add", 202, 2, op_id=2, outcome="succeeded"),
        Change("scheduler", "b", "delete", 202, 3, op_id=3, outcome="partial"),
        Change("webdomain", "w.test", "add", 201, 4, node="soak1"),
    ]
    nodes = {"scheduler": {"local": {"a"}, "soak1": {"a"}, "soak2": set()}, "webdomain": {"soak1": set()}}
    lost, orphans = lost_changes(changes, {"scheduler": {"a", "b"}, "webdomain": {"w.test"}}, nodes)
    assert lost == ["scheduler a: added (2xx, committed) but missing on soak2",
                    "scheduler b: deleted (2xx, committed) but still on the master",
                    "webdomain w.test: added (2xx, committed) but missing on soak1"]
    assert orphans == []


def test_failed_operations_are_not_lost_unless_the_master_holds_them():
    """A 202 whose operation failed everywhere changed nothing: lost only if the master has it anyway."""
    failed = Change("firewall", "x", "add", 202, 1, op_id=1, outcome="failed")
    refused = Change("firewall", "y", "add", 202, 2, op_id=2, outcome="refused")
    assert lost_changes([failed, refused], {"firewall": set()}, {"firewall": _everywhere(set())}) == ([], [])
    lost, _ = lost_changes([failed], {"firewall": {"x"}}, {"firewall": _everywhere({"x"})})
    assert lost == ["firewall x: never committed but still on the master"]
    lost, _ = lost_changes([failed], {"firewall": set()}, {"firewall": {"local": set(), "soak1": {"x"}}})
    assert lost == ["firewall x: never committed but still on soak1"]


def test_a_failed_delete_leaves_the_item_expected_present():
    """The last committed change decides: add committed, delete failed -> it must still be everywhere."""
    changes = [Change("firewall", "a", "add", 202, 1, op_id=1, outcome="succeeded"),
               Change("firewall", "a", "delete", 202, 2, op_id=2, outcome="failed")]
    assert lost_changes(changes, {"firewall": {"a"}}, {"firewall": _everywhere({"a"})}) == ([], [])
    lost, _ = lost_changes(changes, {"firewall": set()}, {"firewall": _everywhere(set())})
    assert lost == ["firewall a: added (2xx, committed) but missing on master, local, soak1, soak2"]


def test_unfinished_operations_count_as_lost_and_non_2xx_changes_as_nothing():
    """An accepted operation still queued is unverifiable (lost); a 400 or 503 answer changed nothing."""
    changes = [Change("firewall", "q", "add", 202, 1, op_id=1, outcome="queued"),
               Change("firewall", "r", "add", 400, 2),
               Change("webdomain", "w.test", "add", 503, 3, node="soak1")]
    lost, orphans = lost_changes(changes, {"firewall": set()}, {"firewall": _everywhere(set()),
                                                                 "webdomain": {"soak1": {"w.test"}}})
    assert lost == ["firewall q: its operation never finished"]
    assert orphans == ["webdomain w.test: never committed, not on the master, left on soak1"]


def test_a_web_domain_change_answered_504_needs_the_master_and_node_to_agree():
    """After a 504 (the node may have applied it) either outcome is right when master and node agree;
    a later committed change decides again."""
    added = Change("webdomain", "a.test", "add", 201, 1, node="soak1")
    doubt = Change("webdomain", "a.test", "delete", 504, 2, node="soak1")
    for held in (set(), {"a.test"}):
        assert lost_changes([added, doubt], {"webdomain": held}, {"webdomain": {"soak1": held}}) == ([], [])
    lost, _ = lost_changes([added, doubt], {"webdomain": set()}, {"webdomain": {"soak1": {"a.test"}}})
    assert lost == ["webdomain a.test: answered 504 (may have been applied) and only soak1 holds it"]
    timed_out = Change("webdomain", "b.test", "add", 504, 3, node="soak1")
    lost, _ = lost_changes([timed_out], {"webdomain": {"b.test"}}, {"webdomain": {"soak1": set()}})
    assert lost == ["webdomain b.test: answered 504 (may have been applied) and only the master holds it"]
    deleted = Change("webdomain", "b.test", "delete", 204, 4, node="soak1")
    lost, _ = lost_changes([timed_out, deleted], {"webdomain": {"b.test"}}, {"webdomain": {"soak1": {"b.test"}}})
    assert lost == ["webdomain b.test: deleted (2xx, committed) but still on the master"]


def test_5xx_count_percentiles_and_table():
    """No answer counts as a 5xx, excused answers do not; nearest-rank percentiles; one row per kind + all."""
    samples = [Sample("page", 200, 0.010, 0), Sample("page", 500, 0.020, 0), Sample("api read", 0, 60, 0),
               Sample("webdomain add", 504, 5, 0, excused=True)]
    assert count_5xx(samples) == 2
    assert percentile([1, 2, 3, 4], 50) == 2 and percentile([1, 2, 3, 4], 99) == 4
    assert percentile(list(range(1, 101)), 99) == 99
    rows = table(samples)
    assert rows[2].startswith("| page | 2 | 10 | 20 | 1 | 0 | 0 |")
    assert rows[-1].startswith("| all | 4 |") and "| 2 | 1 |" in rows[-1]


def test_tags_are_read_from_files_without_prefix_collisions():
    """Keys of this run only, whole tags only; cron comment lines do not count."""
    nft = 'tcp dport 41001 accept comment "soakab12x01x01"\ncomment "soakab12x01x011" comment "soakffffx01x02"'
    assert keys_in(nft, "ab12") == {"soakab12x01x01"}
    cron = "# 3: soakab12x02x01\n1 3 * * * root /bin/true soakab12x02x02\n"
    assert cron_keys(cron, "ab12") == {"soakab12x02x02"}


def test_firewall_rules_are_read_from_the_kernel_table_by_port():
    """nft keeps no comment: a node's rules map back to keys through their ports."""
    assert firewall_port("soakab12x03x02") == 41302
    text = "tcp dport 41302 accept\n\t\ttcp dport 22 accept\n\t\ttcp dport 41001 accept\n"
    assert firewall_keys(text, "ab12", clients=5, writes=4) == {"soakab12x03x02", "soakab12x00x01"}


def test_a_create_whose_pending_mark_a_reconciliation_removed_still_ends(app):
    """Found by the soak (a 500): a poll's reconciliation deleted the node's pending marks while a create was
    in flight; end_write then reloaded the vanished mark through the ORM and raised ObjectDeletedError."""
    from sqlalchemy import select

    from app.extensions import db
    from app.models import PendingWrite
    from app.services import userdata
    from app.services.nodes import ensure_local_node

    with app.app_context():
        node = ensure_local_node(app.config["DATA_DIR"])
        pending = userdata.begin_write(node, "webdomains", "race.example")
        kept = userdata.begin_write(node, "webdomains", "other.example")
        with db.engine.begin() as conn:  # what reconcile_node does in another process
            conn.execute(PendingWrite.__table__.delete().where(PendingWrite.id != kept))
        userdata.end_write(pending)
        assert db.session.scalars(select(PendingWrite.id)).all() == [kept]
        failed = userdata.begin_write(node, "webdomains", "refused.example")
        with db.engine.begin() as conn:
            conn.execute(PendingWrite.__table__.delete().where(PendingWrite.id != kept))
        userdata.end_write(failed)
        userdata.end_write(kept)
        assert db.session.scalars(select(PendingWrite)).all() == []


def test_two_first_uses_of_a_list_at_once_do_not_collide(app, monkeypatch):
    """Found by the soak (500s): two requests both found no firewall list row and both inserted it."""
    from app.extensions import db
    from app.models import SystemList
    from app.models.base import utcnow
    from app.services import lists

    with app.app_context():
        real_get = db.session.get
        raced = []

        def get_while_another_request_creates_it(model, key, **kwargs):
            if raced:
                return real_get(model, key, **kwargs)
            raced.append(key)
            assert real_get(model, key, **kwargs) is None
            with db.engine.begin() as conn:  # the other request's first use commits first
                conn.execute(SystemList.__table__.insert().values(
                    name=key, version=0, hash=lists.empty_hash(), rows=[], updated_at=utcnow()))
            return None

        monkeypatch.setattr(db.session, "get", get_while_another_request_creates_it)
        row = lists.get_list("firewall")
        assert (row.name, row.version, row.rows) == ("firewall", 0, [])
        db.session.commit()


def test_a_ready_node_is_not_demoted_for_a_list_whose_request_is_in_flight(app):
    """Found by the soak (503s on user data): every distributed request's desyncs made every node `syncing`
    while it ran. A list whose lock is held does not count for a ready node; it does once released."""
    from app.queues import redis_connection
    from app.services.distributed import counted_desyncs, lock_key

    with app.app_context():
        redis_connection().set(lock_key("firewall"), "someone", px=5000)
        assert counted_desyncs("ready", ["firewall", "scheduler", "users"]) == ["scheduler", "users"]
        assert counted_desyncs("syncing", ["firewall", "scheduler"]) == ["firewall", "scheduler"]
        # A sync round holds the lock of a list it pushed itself: what it left pending counts.
        assert counted_desyncs("ready", ["firewall"], held=frozenset({"firewall"})) == ["firewall"]
        redis_connection().delete(lock_key("firewall"))
        assert counted_desyncs("ready", ["firewall"]) == ["firewall"]


def test_a_claim_a_reconciliation_settled_first_does_not_fail_the_create(app, users):
    """Found by the soak (a 500, and a domain the client was told failed): a poll's reconciliation indexed the
    new web domain from the node's listing before the create's own commit. The create's claim is now what the
    reconciliation confirms; the create's confirmation after it still ends, and one row is indexed."""
    from sqlalchemy import select

    from app.extensions import db
    from app.models import User, WebDomainIndex
    from app.services import userdata
    from app.services.nodes import ensure_local_node

    owner_id = users.make("alice")
    kind = userdata.KINDS["webdomains"]
    with app.app_context():
        node = ensure_local_node(app.config["DATA_DIR"])
        owner = db.session.get(User, owner_id)
        row_id = userdata.claim(kind, owner, node, "race.example")
        with db.engine.begin() as conn:  # what reconcile_node does in another process
            conn.execute(WebDomainIndex.__table__.update().values(claimed_at=None))
        userdata.confirm_claim(kind, row_id, "alice's web domain race.example")
        assert db.session.execute(select(WebDomainIndex.id, WebDomainIndex.name, WebDomainIndex.claimed_at)).all() == [
            (row_id, "race.example", None)]
        gone = userdata.claim(kind, owner, node, "gone.example")
        with db.engine.begin() as conn:  # the owner deleted meanwhile (or the claim taken for abandoned)
            conn.execute(WebDomainIndex.__table__.delete().where(WebDomainIndex.id == gone))
        userdata.confirm_claim(kind, gone, "alice's web domain gone.example")
        assert db.session.scalars(select(WebDomainIndex.name)).all() == ["race.example"]


def delete_in_flight(app, owner_id: int, name: str):
    """(node, row, row id, mark id): an indexed web domain on the local node whose delete has been sent, its
    pending mark written and committed, so the row is expired as in a real delete (call inside an app context)."""
    from sqlalchemy import select

    from app.extensions import db
    from app.models import WebDomainIndex
    from app.services import userdata
    from app.services.nodes import ensure_local_node

    node = ensure_local_node(app.config["DATA_DIR"])
    db.session.add(WebDomainIndex(owner_id=owner_id, node_id=node.id, name=name))
    db.session.commit()
    row = db.session.scalar(select(WebDomainIndex).where(WebDomainIndex.name == name))
    row_id = row.id
    return node, row, row_id, userdata.begin_write(node, "webdomains", name)


def test_a_delete_whose_index_row_a_reconciliation_removed_first_still_ends(app, users):
    """Found by the soak (a 500 for a delete that was done): the poll's reconciliation removed the index row
    after the node deleted the domain, before the delete's own commit."""
    from sqlalchemy import select

    from app.extensions import db
    from app.models import PendingWrite, WebDomainIndex
    from app.services import userdata

    owner_id = users.make("alice")
    with app.app_context():
        _, row, _, pending = delete_in_flight(app, owner_id, "gone.example")
        with db.engine.begin() as conn:  # what reconcile_node does in another process
            conn.execute(WebDomainIndex.__table__.delete())
            conn.execute(PendingWrite.__table__.delete())
        db.session.delete(row)
        userdata.end_write(pending)
        assert db.session.scalars(select(WebDomainIndex)).all() == []
        assert db.session.scalars(select(PendingWrite)).all() == []


def test_a_delete_whose_row_a_reconciliation_removed_does_not_remove_the_next_claim(app, users):
    """Found by the soak (a web domain lost, another left behind): a reconciliation removed the row of a
    delete in flight, which was the highest id; the next create's claim took that id (SQLite reuses the
    highest deleted rowid without AUTOINCREMENT), the delete's own commit then removed that claim, and the
    id handed to the second create's client named a third domain later. Index ids are never reused now."""
    from sqlalchemy import select

    from app.extensions import db
    from app.models import Node, User, WebDomainIndex
    from app.services import userdata

    owner_id = users.make("alice")
    with app.app_context():
        node, row, deleted_id, pending = delete_in_flight(app, owner_id, "deleted.example")
        with db.engine.begin() as conn:  # the reconciliation, in another process
            conn.execute(WebDomainIndex.__table__.delete())
        kind, owner = userdata.KINDS["webdomains"], db.session.get(User, owner_id)
        claimed = userdata.claim(kind, owner, db.session.get(Node, node.id), "next.example")
        assert claimed != deleted_id, "an id is never given to a second row"
        db.session.delete(row)
        userdata.end_write(pending)
        assert db.session.scalars(select(WebDomainIndex.name)).all() == ["next.example"]


def test_only_the_killed_workers_operation_may_have_stopped():
    """Recovery's "the worker stopped" is expected for the operation the SIGKILLed worker ran, and for no other."""
    messages = {
        7: "Firewall: the worker stopped before the master committed the change; the master's list is unchanged (v3)",
        8: "Firewall v4: the master committed it, then the worker stopped. Applied on 4 of 4 nodes",
        9: "Firewall v5: applied on 4 of 4 nodes",
    }
    stops = unexplained_stops(messages, killed_op=7)
    assert len(stops) == 1 and stops[0].startswith("operation 8 finished as if its worker had stopped, "
                                                   "but the killed worker was running operation 7")
    assert [s.split(" finished")[0] for s in unexplained_stops(messages, killed_op=None)] == [
        "operation 7", "operation 8"]
    assert unexplained_stops({7: messages[7], 9: messages[9]}, killed_op=7) == []
