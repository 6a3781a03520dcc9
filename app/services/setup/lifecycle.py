"""A node's setup from submission to removal: the root bootstrap, the setup job and its lock, the
agent update, retries, decommissioning, and the steps' progress as pages and the API show it."""

from __future__ import annotations

import secrets
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

from flask import current_app, url_for
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import Node, NodeOutcome, NodeState, Operation, OperationStatus
from app.queues import redis_connection
from app.services import nodes as node_service
from app.services import operations
from app.services.dbserver import resync_db_servers
from app.services.desyncs import register_all
from app.services.policies import get_policy
from app.services.setup.errors import InputErrors, SetupError
from app.services.setup.inputs import NodeInput
from app.services.setup.paths import (
    ADMIN_USER,
    AGENT_ETC,
    AGENT_HOME,
    AGENT_PORT,
    AGENT_SERVICE,
    AGENT_STATE,
    AGENT_UNIT,
    APT_LIST,
    DECOMMISSION_SCRIPT,
    DECOMMISSION_TIMEOUT_S,
    INIT_SCRIPT,
    agent_control,
)
from app.services.setup.ssh import connect, master_key, master_public_key
from app.services.setup.steps import (
    STEPS,
    Session,
    build_and_install,
    step_apt_source,
    step_check_os,
    step_configure_agent,
    step_copy_templates,
    step_create_admin,
    step_install_agent,
    step_register_key,
    wait_for_agent,
    wheelhouse_dir,
)
from app.services.wheelhouse import Wheelhouse, build_wheelhouse

LOCK_TTL_S = 20


def bootstrap(data: NodeInput, data_dir: Path, log: Callable[[str], None]) -> str:
    """Steps 1-3 as root with the given credential (used here only); returns the pinned host key fingerprint."""
    conn, fingerprint = connect(data.address, data.ssh_port, "root", password=data.password,
                                pkey=data.private_key, expected_fingerprint=data.host_key_fingerprint)
    log(f"connected to {data.address}:{data.ssh_port} as root; host key {fingerprint}")
    try:
        s = Session(conn, data.address, log)
        log(f"step 1/8 {STEPS[0]}: {step_check_os(s)}")
        log(f"step 2/8 {STEPS[1]}: {step_create_admin(s)}")
        log(f"step 3/8 {STEPS[2]}: {step_register_key(s, master_public_key(data_dir))}")
    except SetupError:
        raise
    except Exception as exc:  # noqa: BLE001 - an odd answer from the node is its error, never a 500
        raise SetupError(f"{data.address} answered unexpectedly during steps 1-3: {type(exc).__name__}: {exc}",
                         field="address") from None
    finally:
        conn.close()
    # Proves the next connections work before the credential is forgotten.
    check, _ = connect(data.address, data.ssh_port, ADMIN_USER, pkey=master_key(data_dir),
                       expected_fingerprint=fingerprint)
    try:
        uid = Session(check, data.address, log).run("id -u").stdout.strip()
    finally:
        check.close()
    if uid != "0":
        raise SetupError(f"{ADMIN_USER} on {data.address} logged in with UID {uid}, not 0", field="address")
    log(f"the master's key logs in as {ADMIN_USER} (UID 0); the root credential is no longer needed")
    return fingerprint


def add_node(data: NodeInput, *, user_id: int | None, data_dir: Path) -> tuple[Node, Operation]:
    """Bootstrap the node over SSH, then record it and start its setup job; nothing is stored on failure."""
    lines: list[str] = []
    fingerprint = bootstrap(data, data_dir, lines.append)
    data.password = data.private_key = None
    node = node_service.create_node(
        data.name, data.address, roles=data.roles, weight=data.weight, ssh_port=data.ssh_port,
        agent_port=AGENT_PORT, host_key_fingerprint=fingerprint, setup_pending=True, setup_step=1,
        reason=f"added over SSH; host key {fingerprint} pinned",
    )
    try:
        db.session.commit()
    except IntegrityError:
        # Another request added a node with this name while this one was bootstrapping.
        db.session.rollback()
        raise InputErrors({"name": f"a node named {data.name} already exists"}) from None
    operation = start_setup(node, user_id=user_id, preface=lines)
    return node, operation


def start_setup(node: Node, *, user_id: int | None, preface: list[str] | None = None) -> Operation:
    """Start (or restart) the setup job of a node; refused while another one holds its lock."""
    if setup_lock_holder(node.id):
        raise SetupError(f"a setup job for {node.name} is running; wait for it to finish", status=409)
    previous = db.session.get(Operation, node.setup_operation_id) if node.setup_operation_id else None
    if previous is not None and not previous.op_status.finished:
        operations.finish(previous, OperationStatus.FAILED, "interrupted: the worker running it stopped")
    # The bootstrap's lines go in with the job (it writes them first): appending them here could
    # race the job's own appends to the same log.
    operation = operations.start_operation(
        "node_setup", f"Set up node {node.name}", "setup_node", user_id=user_id, targets=[node],
        params={"node_id": node.id, "preface": list(preface or [])}, job_timeout=3600,
    )
    node.setup_operation_id = operation.id
    db.session.commit()
    return operation


def _lock_key(node_id: int) -> str:
    return f"hostfleet:setup-lock:{node_id}"


def setup_lock_holder(node_id: int) -> str | None:
    """The token of the job holding the node's setup lock, if one is alive."""
    value = redis_connection().get(_lock_key(node_id))
    return value.decode() if value else None


class SetupLock:
    """A per-node lock with a short TTL that a heartbeat thread keeps alive; a killed job frees it fast."""

    def __init__(self, node_id: int):
        self.redis = redis_connection()
        self.key = _lock_key(node_id)
        self.token = uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> SetupLock:
        if not self.redis.set(self.key, self.token, nx=True, ex=LOCK_TTL_S):
            raise SetupError("another setup job is running for this node", status=409)
        self._thread = threading.Thread(target=self._beat, daemon=True)
        self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(LOCK_TTL_S / 4):
            if self.redis.get(self.key) == self.token.encode():
                self.redis.expire(self.key, LOCK_TTL_S)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self.redis.get(self.key) == self.token.encode():
            self.redis.delete(self.key)


def run_setup_steps(operation: Operation) -> Node | None:
    """Steps 1-8 of the setup job as ispmaster; the node once they all succeeded, else None (the
    operation then holds the failure and is finished)."""
    node = db.session.get(Node, operation.params["node_id"])
    if node is None:
        operations.finish(operation, OperationStatus.FAILED, "the node was removed")
        return None
    operations.mark_running(operation)
    preface = operation.params.get("preface") or []
    if preface and not (operation.log or "").strip():
        operations.append_log(operation, "\n".join(preface))
    try:
        with SetupLock(node.id):
            _run_steps(operation, node)
    except SetupError as exc:
        db.session.rollback()
        fail_setup(operation, node, exc)
        return None
    return node


def fail_setup(operation: Operation, node: Node, exc: SetupError) -> None:
    """Put the node in `error` with the failing step and its message; the operation failed."""
    step = exc.step or node.setup_step
    title = f"step {step}/8 ({STEPS[step - 1]})" if step else "setup"
    node.setup_error = exc.message
    node_service.change_state(node, NodeState.ERROR, f"{title} failed: {exc.message}")
    db.session.commit()
    operations.append_log(operation, f"FAILED {title}: {exc.message}")
    operations.set_node_outcome(operation, node.id, NodeOutcome.FAILED, exc.message)
    operations.finish(operation, OperationStatus.FAILED, f"{title} failed: {exc.message}")


def _run_steps(operation: Operation, node: Node) -> None:
    data_dir = Path(current_app.config["DATA_DIR"])
    log = lambda line: operations.append_log(operation, line)  # noqa: E731
    node_service.change_state(node, NodeState.CONNECTING, "setup job: connecting over SSH")
    node.setup_error = None
    db.session.commit()
    conn, _ = connect(node.address, node.ssh_port, ADMIN_USER, pkey=master_key(data_dir),
                      expected_fingerprint=node.host_key_fingerprint)
    s = Session(conn, node.address, log)
    try:
        def step(number: int, func: Callable[[], str]) -> None:
            node.setup_step = number
            db.session.commit()
            log(f"step {number}/8 {STEPS[number - 1]}: running")
            try:
                outcome = func()
            except SetupError as exc:
                exc.step = number
                raise
            except Exception as exc:  # noqa: BLE001 - any failure of a step must end as a clear error
                raise SetupError(f"{type(exc).__name__}: {exc}", step=number) from None
            log(f"step {number}/8 {STEPS[number - 1]}: done: {outcome}")

        step(1, lambda: step_check_os(s))
        step(2, lambda: step_create_admin(s))
        step(3, lambda: step_register_key(s, master_public_key(data_dir)))
        step(4, lambda: step_apt_source(s, get_policy().node_apt_source))
        house: list[Wheelhouse] = []
        step(5, lambda: build_and_install(s, house, data_dir))
        step(6, lambda: step_copy_templates(s))
        if not node.agent_secret:
            # Generated by the master, kept in its database; written to the node over SSH only.
            node.agent_secret = secrets.token_hex(32)
            db.session.commit()

        def configure() -> str:
            fingerprint, message = step_configure_agent(s, node, node.agent_secret)
            node.cert_fingerprint = fingerprint
            db.session.commit()
            stats = wait_for_agent(node, node.agent_secret, fingerprint)
            return message + f"; the agent answers signed requests (agent {stats.get('agent_version')}, " \
                             f"API {stats.get('api_version')})"

        step(7, configure)

        def register() -> str:
            names = register_all(node)
            if "web" in (node.roles or []):
                resync_db_servers()  # the db nodes let this web node in
            node.setup_pending = False
            node.setup_step = None
            db.session.commit()
            return ", ".join(names)

        step(8, register)
    finally:
        conn.close()


def reinstall_agent(operation: Operation) -> tuple[Node, dict, Wheelhouse] | None:
    """The agent update's SSH part: reinstall the master's agent and templates, restart it and wait for
    its answer; (node, its statistics, the wheelhouse) once it answers, else None (the operation failed)."""
    node = db.session.get(Node, operation.params["node_id"])
    if node is None:
        operations.finish(operation, OperationStatus.FAILED, "the node was removed")
        return None
    operations.mark_running(operation)
    data_dir = Path(current_app.config["DATA_DIR"])
    log = lambda line: operations.append_log(operation, line)  # noqa: E731
    try:
        with SetupLock(node.id):
            conn, _ = connect(node.address, node.ssh_port, ADMIN_USER, pkey=master_key(data_dir),
                              expected_fingerprint=node.host_key_fingerprint)
            try:
                s = Session(conn, node.address, log)
                log(f"step 1/8: {step_check_os(s)}")
                house = build_wheelhouse(wheelhouse_dir(data_dir), s.python_version)
                log(f"step 5/8: {step_install_agent(s, house, force=True)}")
                log(f"step 6/8: {step_copy_templates(s)}")
                s.run(agent_control(s.init_system, "restart"), what="restarting the agent")
                stats = wait_for_agent(node, node.agent_secret, node.cert_fingerprint)
            finally:
                conn.close()
    except SetupError as exc:
        db.session.rollback()
        log(f"FAILED: {exc.message}")
        operations.set_node_outcome(operation, node.id, NodeOutcome.FAILED, exc.message)
        operations.finish(operation, OperationStatus.FAILED, exc.message)
        return None
    return node, stats, house


def start_update_agent(node: Node, *, user_id: int | None) -> Operation:
    """Start the one-click agent update of a node (refused while its setup job runs)."""
    if node.is_local:
        raise SetupError("the local node's agent is the panel's own code: update the panel instead", status=409)
    if node.setup_pending:
        raise SetupError(f"{node.name} is not set up yet: retry its setup instead", status=409)
    if setup_lock_holder(node.id):
        raise SetupError(f"a setup job for {node.name} is running; wait for it to finish", status=409)
    return operations.start_operation("node_update_agent", f"Update the agent on {node.name}", "update_agent",
                                      user_id=user_id, targets=[node], params={"node_id": node.id}, job_timeout=1800)


def can_retry(node: Node) -> bool:
    """Retry is offered for a node in `error`, or whose setup job died without finishing."""
    if node.is_local:
        return False
    if node.state == NodeState.ERROR.value:
        return True
    if not node.setup_pending:
        return False
    operation = db.session.get(Operation, node.setup_operation_id) if node.setup_operation_id else None
    return setup_lock_holder(node.id) is None and (operation is None or operation.status != "queued")



def decommission(node: Node) -> tuple[bool, str]:
    """Best effort at removal: take the agent, the master's key and ispmaster off the node over SSH.

    Never raises: returns (done, what happened); when the node cannot be reached the message says
    what to run on it by hand, so a removed server never keeps a listening agent or a key unknowingly.
    """
    by_hand = (f"on {node.address}, as root: systemctl disable --now {AGENT_UNIT} (on a node without systemd: "
               f"service {AGENT_SERVICE} stop; rm -f {INIT_SCRIPT}; update-rc.d {AGENT_SERVICE} remove); "
               f"rm -rf {AGENT_HOME} "
               f"{AGENT_ETC} {AGENT_STATE} {APT_LIST}; sed -i '/ hostfleet-master$/d' /root/.ssh/authorized_keys; "
               f"userdel -f {ADMIN_USER}")
    if not node.host_key_fingerprint:
        return False, f"{node.name} was never reached over SSH, so nothing was installed by the panel"
    try:
        key = master_key(Path(current_app.config["DATA_DIR"]))
        conn, _ = connect(node.address, node.ssh_port, ADMIN_USER, pkey=key,
                          expected_fingerprint=node.host_key_fingerprint)
    except SetupError as exc:
        return False, f"the agent could not be removed from {node.name} ({exc.message}); {by_hand}"
    try:
        Session(conn, node.address, lambda _line: None).run(
            DECOMMISSION_SCRIPT, timeout=DECOMMISSION_TIMEOUT_S, what="removing the agent")
    except SetupError as exc:
        return False, f"removing the agent from {node.name} failed ({exc.message}); {by_hand}"
    finally:
        conn.close()
    return True, (f"on {node.address}: the agent was stopped and removed, and the master's key and {ADMIN_USER} "
                  "were taken off; its sites, zones and mail were left as they are")


def setup_steps(node: Node) -> list[dict]:
    """The 8 steps with their status as the node page and the API show them."""
    operation = db.session.get(Operation, node.setup_operation_id) if node.setup_operation_id else None
    running = operation is not None and operation.status == OperationStatus.RUNNING.value
    current = node.setup_step or (0 if node.setup_pending else len(STEPS) + 1)
    steps = []
    for n, title in enumerate(STEPS, start=1):
        if n < current:
            status = "done"
        elif n == current:
            status = "failed" if node.state == NodeState.ERROR.value else ("running" if running else "pending")
        else:
            status = "pending"
        steps.append({"n": n, "title": title, "status": status})
    return steps


def setup_to_dict(node: Node) -> dict:
    """The node's setup progress and software installation, for the API."""
    operation = db.session.get(Operation, node.setup_operation_id) if node.setup_operation_id else None
    return {
        "node_id": node.id,
        "state": node.state,
        "pending": node.setup_pending,
        "steps": setup_steps(node),
        "error": node.setup_error,
        "operation": None if operation is None else {
            "id": operation.id, "status": operation.status,
            "url": url_for("api.operations_get", operation_id=operation.id),
        },
        "software": (node.stats or {}).get("software"),
        "can_retry": can_retry(node),
    }
