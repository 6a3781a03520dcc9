"""The agent's Flask app (every request signed) and its HTTPS server (cheroot)."""

from __future__ import annotations

import logging
import os
import signal
import ssl
import sys
import threading
import time
from urllib.parse import quote

from flask import Flask, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from agent.config import AgentConfig
from agent.heap import freeze_loaded
from agent.signing import NonceStore, SignatureError, verify

log = logging.getLogger("hostfleet.agent")

THREADS = 10
# Full-list replaces are the largest bodies the master sends.
MAX_BODY_BYTES = 32 * 1024 * 1024


def create_app(config: AgentConfig) -> Flask:
    """Build the agent app: signature check on every request, JSON errors, all blueprints."""
    app = Flask("agent")
    app.config["AGENT_CONFIG"] = config
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.config["STARTED_AT"] = time.time()
    app.config["SECRET"] = config.read_secret()
    app.extensions["hostfleet_nonces"] = NonceStore(
        window_s=config.max_clock_skew_s, not_before=app.config["STARTED_AT"]
    )

    app.before_request(require_signature)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, unexpected_error)

    from agent.routes import data, lists, software, stats

    app.register_blueprint(stats.bp)
    app.register_blueprint(lists.bp)
    app.register_blueprint(data.bp)
    app.register_blueprint(software.bp)
    return app


def signed_path() -> str:
    """The request target exactly as the client sent it (path and query string)."""
    raw = request.environ.get("REQUEST_URI") or request.environ.get("RAW_URI")
    if raw:
        return raw
    path = quote(request.environ.get("PATH_INFO", ""), safe="/:@!$&'()*+,;=-._~")
    query = request.environ.get("QUERY_STRING", "")
    return f"{path}?{query}" if query else path


def require_signature():
    """Reject any request that is not signed with this node's secret."""
    try:
        verify(
            current_app.config["SECRET"],
            request.method,
            signed_path(),
            request.get_data(cache=True),
            request.headers,
            current_app.extensions["hostfleet_nonces"],
        )
    except SignatureError as exc:
        # Never log the headers: they carry the signature.
        log.warning(
            "rejected request from %s: %s %r: %s",
            request.remote_addr,
            request.method,
            request.path,
            exc.reason,
        )
        return jsonify(error=f"unauthorized: {exc.reason}"), 401
    return None


def http_error(exc: HTTPException):
    """Werkzeug's HTTP errors (404, 405, 413...) as JSON."""
    response = jsonify(error=exc.description or exc.name)
    response.status_code = exc.code or 500
    if exc.code == 405 and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def unexpected_error(exc: Exception):
    """Anything a view did not handle: log the traceback, answer a JSON 500."""
    log.exception("unhandled error on %s %s", request.method, request.path)
    return jsonify(error="internal error in the agent; see its log"), 500


def setup_logging(config: AgentConfig) -> None:
    """Log to stderr, and to the configured log file if there is one."""
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if config.log_file:
        # Created owner-only: the log names the addresses that probe the agent.
        os.close(os.open(config.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        handlers.append(logging.FileHandler(config.log_file))
    root = logging.getLogger("hostfleet")
    root.setLevel(logging.INFO)
    for handler in handlers:
        handler.setFormatter(fmt)
        root.addHandler(handler)


KEEP_ALIVE_CONNECTIONS = 64
# How long an idle kept-alive connection stays open (nginx's default is 75 s); a request must then arrive
# whole within agent.httpgate's budget (HEAD_TIMEOUT_S, a second more per MiB of body). A master process
# that makes another change within 50 s (agent.client.REUSE_IDLE_S, kept under this so a request is
# never written as the agent closes the connection) reuses its connections instead of paying a new
# TLS handshake per node, which at 50 nodes costs about as much as the change itself.
SOCKET_TIMEOUT_S = 60


def build_server(config: AgentConfig, app: Flask):
    """A cheroot HTTPS server for app: TLS 1.2+, a pool of THREADS workers given only whole requests
    (agent/httpgate.py), keep-alive."""
    from agent.httpgate import GatedServer, GatedTLSAdapter

    server = GatedServer(
        (config.listen_host, config.listen_port),
        app,
        numthreads=THREADS,
        # cheroot's default backlog of 5 drops SYNs when the master's pool opens its
        # connections at once, and each dropped one costs a 1 s retransmit.
        request_queue_size=64,
        server_name="hostfleet-agent",
        timeout=SOCKET_TIMEOUT_S,
        shutdown_timeout=5,
    )
    adapter = GatedTLSAdapter(str(config.cert_file), str(config.key_file))
    adapter.context.minimum_version = ssl.TLSVersion.TLSv1_2
    server.ssl_adapter = adapter
    server.error_log = _cheroot_error_log
    # Every master process (web threads, workers, collector) keeps its own connections alive;
    # past cheroot's default of 10 idle ones each answer says "Connection: close" and the next
    # call pays a new TLS handshake. Idle connections wait in a selector, not in a thread.
    server.keep_alive_conn_limit = KEEP_ALIVE_CONNECTIONS
    return server


def _cheroot_error_log(msg: str = "", level: int = logging.INFO, traceback: bool = False) -> None:
    # Route cheroot's own messages (bad TLS handshakes, socket errors) into our log.
    logging.getLogger("hostfleet.agent.http").log(level, "%s", msg, exc_info=traceback)


def converge(config: AgentConfig) -> None:
    """Before serving: homes other accounts can enter (made before homes were private) are closed, the
    document roots and index pages older agents made get today's private modes (homefs.make_site_private),
    and the web and mail files are rendered again from the stored records, so a node updated to templates
    that confine customers (disable_symlinks, the pool's open_basedir, the default server, the delivery
    quota) does not keep serving the old ones until its next change, on a dns node bind's options are
    made authoritative-only, and a node holding hosting accounts gets sshd's SFTP drop-in; where loopback
    is closed to hosting accounts, the firewall table is loaded.
    Nothing is written when nothing differs; a failure is logged and the agent serves anyway (the files stay
    as they were)."""
    from agent.homefs import make_homes_private, make_site_private
    from agent.ops import apply, dns, firewall, mail, suspension, web
    from agent.validation import ValidationError

    private = make_homes_private(config)
    if private:
        log.warning("made %d homes private: %s", len(private), ", ".join(private))
    for domain in web.list_domains(config):
        try:
            sites = make_site_private(config, domain["owner"], domain["docroot"])
        except (ValidationError, OSError) as exc:
            log.warning("left %s's document root as it is: %s", domain["name"], exc)
            continue
        if sites:
            log.warning("made %s's site private: %s", domain["name"], ", ".join(sites))
    dns.close_zone_dir(config)
    mail.close_exim_dir(config)
    if "dns" in config.roles and (config.root / dns.NAMED_CONF).exists():
        try:
            dns.apply_config(config)
        except Exception:  # noqa: BLE001  (the agent must still serve: the master sees the node and its errors)
            log.exception("bind's configuration could not be brought in line with the agent's templates")
    if config.closed_loopback_uids:
        # The output chain that closes loopback to hosting accounts must be there before any list is pushed.
        try:
            result = firewall.apply_rules(config, apply.load_list_rows(config, firewall.LIST_NAME))
        except Exception as exc:  # noqa: BLE001 - logged; the agent serves with the files as they are
            log.error("could not close loopback to hosting accounts at start: %s", exc)
        else:
            if result.changed:
                log.warning("closed loopback to hosting accounts (UIDs %s-%s)", *config.closed_loopback_uids)
    if "db" in config.roles:
        from agent.ops import db

        try:
            db.load_firewall(config)
        except Exception as exc:  # noqa: BLE001 - logged; the agent serves (MariaDB's grants still hold)
            log.error("could not load the db node's firewall table (port %s) at start: %s", db.PORT, exc)
    if apply.hosting_users(config):
        from agent.ops import sftp

        # The SFTP drop-in of today's template, for the accounts a node held before it had one.
        try:
            sftp.ensure_sshd(config)
        except Exception as exc:  # noqa: BLE001 - logged; the agent serves (sshd keeps its old files)
            log.error("could not configure SFTP for hosting accounts at start: %s", exc)
    with apply.OP_LOCK:
        for what, records, again in (
            ("web", web.list_domains, lambda: web.apply_domains(config, web.list_domains(config))),
            ("mail", mail.list_domains, lambda: mail.apply_suspended(config, suspension.owners(config))),
        ):
            if not records(config):
                continue
            try:
                result = again()
            except Exception as exc:  # noqa: BLE001 - logged; the agent serves with the files as they are
                log.error("could not render the %s files again at start: %s", what, exc)
                continue
            if result.changed:
                log.warning("rendered the %s files again at start: %s", what,
                            ", ".join(result.written + result.removed))


def serve(config: AgentConfig) -> None:
    """Run the agent until SIGTERM or SIGINT, then finish in-flight requests and stop."""
    setup_logging(config)
    from agent.ops.apply import recover_interrupted

    restored = recover_interrupted(config)
    if restored:
        log.warning("rolled back a change interrupted by a crash; restored %d files", len(restored))
    converge(config)
    app = create_app(config)
    server = build_server(config, app)
    log.info("froze %d objects loaded at start", freeze_loaded())
    stopping = threading.Event()

    def request_stop(signum, _frame):
        log.info("received %s, stopping", signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    server.prepare()
    # serve() runs in a thread so that stop() is called from the main thread, never from
    # inside the signal handler while the accept loop is mid-step.
    worker = threading.Thread(target=server.serve, name="cheroot-serve", daemon=True)
    worker.start()
    log.info(
        "agent listening on https://%s:%s (root %s)",
        config.listen_host,
        server.bind_addr[1],
        config.root,
    )
    while not stopping.wait(1.0):
        if not worker.is_alive():
            log.error("HTTP server stopped unexpectedly")
            break
    server.stop()
    worker.join(timeout=10)
    log.info("agent stopped")
