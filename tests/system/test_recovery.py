"""Recovery of distributed requests whose worker, web process or Redis went away."""

from __future__ import annotations

from datetime import timedelta

from tests.conftest import wait_until


def _list_change(app, status: str, **fields) -> int:
    from app.extensions import db
    from app.models import Operation

    with app.app_context():
        operation = Operation(kind="list_change", title="t", status=status,
                              params={"list": "firewall", "action": "add", "row_id": None,
                                      "row": {"action": "accept", "protocol": "tcp", "ports": "1", "source": "",
                                              "comment": ""}}, **fields)
        db.session.add(operation)
        db.session.commit()
        return operation.id


def test_queued_operation_without_a_job_is_failed_after_the_grace(app):
    """The web process died between recording the operation and enqueueing it."""
    from app.extensions import db
    from app.models import Operation
    from app.models.base import utcnow
    from app.services.sync import recover_interrupted_operations

    fresh = _list_change(app, "queued")
    old = _list_change(app, "queued", created_at=utcnow() - timedelta(minutes=5))
    with app.app_context():
        assert recover_interrupted_operations() == [old]
        assert db.session.get(Operation, fresh).status == "queued"
        operation = db.session.get(Operation, old)
        assert operation.status == "failed" and "unchanged (v0)" in operation.message


def test_a_queued_operation_whose_job_redis_lost_is_queued_again(app):
    """Redis killed before its append-only file held the 202's enqueue: the job is gone, nothing of
    the change ran, and the operation row holds all of it. It is queued again, not failed."""
    from app.extensions import db
    from app.models import Operation
    from app.queues import fetch_job, get_queue
    from app.services.sync import recover_interrupted_operations

    lost = _list_change(app, "queued", rq_job_id="a-job-redis-lost")
    with app.app_context():
        assert recover_interrupted_operations() == []
        db.session.commit()
        operation = db.session.get(Operation, lost)
        assert operation.status == "queued" and operation.rq_job_id != "a-job-redis-lost"
        assert "Redis no longer has this request's job" in operation.log
        job = fetch_job(operation.rq_job_id)
        assert job.args == [lost] and job.id in get_queue().get_job_ids()


def test_a_request_whose_job_keeps_being_lost_is_failed_after_three_requeues(app):
    """A change whose job is lost at every recovery (or whose worker dies each time before its first
    step) is queued again three times, then failed with the master's list unchanged: not queued again
    at every recovery for ever."""
    from app.extensions import db
    from app.models import Operation
    from app.queues import get_queue
    from app.services.sync import MAX_REQUEUES, recover_interrupted_operations

    lost = _list_change(app, "queued", rq_job_id="lost-0")
    with app.app_context():
        for attempt in range(1, MAX_REQUEUES + 1):
            assert recover_interrupted_operations() == []
            db.session.commit()
            operation = db.session.get(Operation, lost)
            assert operation.status == "queued" and operation.requeues == attempt
            get_queue().remove(operation.rq_job_id)
            operation.rq_job_id = f"lost-{attempt}"  # Redis loses the new job too
            db.session.commit()
        assert recover_interrupted_operations() == [lost]
        db.session.commit()
        operation = db.session.get(Operation, lost)
        assert operation.status == "failed" and operation.requeues == MAX_REQUEUES
        assert "unchanged (v0)" in operation.message
        assert "after 3 times queued again: not queued again" in operation.log
        assert get_queue().get_job_ids() == []


def test_an_operation_that_finished_while_recovery_looked_is_left_as_it_ended(app, monkeypatch):
    """Recovery read the operation as running; its worker then finished it (a refusal) and let its alive
    key go before recovery looked for the key. It is not taken for dead: its status stays, and no node
    is marked for a resync."""
    from sqlalchemy import create_engine, text

    from app.extensions import db
    from app.models import Desync, Operation
    from app.services import list_locks
    from app.services.sync import recover_interrupted_operations

    operation_id = _list_change(app, "running")
    with app.app_context():
        url = db.engine.url

    def worker_finishes_first(op_id):
        # The worker's own connection: the final status is committed, then the alive key is gone.
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("UPDATE operations SET status = 'refused', message = 'nothing to delete' "
                              "WHERE id = :id"), {"id": op_id})
        engine.dispose()
        return False

    monkeypatch.setattr(list_locks, "operation_alive", worker_finishes_first)
    with app.app_context():
        assert recover_interrupted_operations() == []
        operation = db.session.get(Operation, operation_id)
        assert (operation.status, operation.message) == ("refused", "nothing to delete")
        assert db.session.scalars(db.select(Desync)).all() == []


def test_a_lease_whose_redis_went_away_is_lost(app, redis_url):
    """Redis restarted under a running request: the renewal notices and the request must not commit."""
    from redis import Redis

    from app.queues import redis_connection
    from app.services.distributed import Lease, lock_key

    with app.app_context():
        lease = Lease(redis_connection(), 0.3, alive_key="hostfleet:alive:op:test")
        with lease:
            assert lease.acquire("firewall", 1)
            Redis.from_url(redis_url).delete(lock_key("firewall"))
            wait_until(lambda: lease.lost, 5, what="the lease to be reported lost")


def test_a_lock_given_back_while_the_renewal_runs_is_not_a_lost_lease(app, monkeypatch):
    """A change waiting its turn takes and gives back the list's lock many times a second; a renewal
    that finds a lock just given back must not mark the lease lost (the change would then fail with
    "the list's lock was lost" although nobody else ever held it). A loaded machine is slow between
    a renewal picking a lock and Redis renewing it: the renewal here waits 20 ms there."""
    import time

    from redis.lock import Lock

    from app.queues import redis_connection
    from app.services.distributed import Lease

    real_reacquire = Lock.reacquire

    def slow_reacquire(self):
        time.sleep(0.02)
        return real_reacquire(self)

    monkeypatch.setattr(Lock, "reacquire", slow_reacquire)
    with app.app_context():
        with Lease(redis_connection(), 0.06) as lease:
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline and not lease.lost:
                assert lease.acquire("firewall", 1)
                time.sleep(0.01)
                lease.release("firewall")
                time.sleep(0.005)
            assert not lease.lost
            assert lease.acquire("firewall", 1)
            time.sleep(0.2)
            assert not lease.lost


def test_a_request_that_lost_its_lease_does_not_commit(cluster, app, monkeypatch):
    """The lock vanishes (Redis restart) while the nodes apply: master unchanged, nodes synced back."""
    import time

    from redis import Redis

    from app.services import distributed

    cluster.add("n1")
    real_push = distributed.push_list
    redis = Redis.from_url(app.config["REDIS_URL"])

    def push_then_lose_lock(client, name, body, encoded=None):
        result = real_push(client, name, body, encoded)
        redis.delete(distributed.lock_key(name))
        time.sleep(1.2)
        return result

    monkeypatch.setenv("HOSTFLEET_LIST_LEASE_S", "0.6")
    monkeypatch.setattr(distributed, "push_list", push_then_lose_lock)
    operation = cluster.change("firewall", body={"action": "accept", "protocol": "tcp", "ports": "81"})
    assert operation["status"] == "failed", operation
    assert "lock was lost" in operation["nodes"][0]["error"]
    assert cluster.master("firewall")["version"] == 0
    monkeypatch.setattr(distributed, "push_list", real_push)
    cluster.sync()
    assert cluster.desyncs() == set() and cluster.converged("firewall", ["n1"])
