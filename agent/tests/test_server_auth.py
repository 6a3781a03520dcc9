"""Authentication of every request by the real agent process, and its private files."""

import json
import os
import stat
import subprocess
import sys
import time

import pytest

from agent.config import AgentConfig, ConfigError, write_config
from agent.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER
from agent.tests.conftest import REPO

STATS = "/v1/stats"


def test_valid_request_is_served(agent):
    """A correctly signed request gets 200 and JSON."""
    response = agent.raw("GET", STATS, headers=agent.signed("GET", STATS))
    assert response.status == 200
    assert response.payload["api_version"] == 1


@pytest.mark.parametrize(
    ("case", "method", "path", "body", "sign", "reason"),
    [
        ("unsigned", "GET", STATS, b"", None, "missing header"),
        ("wrong secret", "GET", STATS, b"", {"secret": "ab" * 32}, "bad signature"),
        ("body changed after signing", "PUT", "/v1/x", b'{"a":[2]}', {"body": b'{"a":[1]}'}, "bad signature"),
        ("query changed after signing", "GET", STATS + "?a=2", b"", {"path": STATS + "?a=1"}, "bad signature"),
        ("method changed after signing", "DELETE", STATS, b"", {"method": "GET"}, "bad signature"),
        ("timestamp too old", "GET", STATS, b"", {"age": 3600}, "outside the allowed window"),
        ("timestamp in the future", "GET", STATS, b"", {"age": -3600}, "outside the allowed window"),
        ("unknown path unsigned", "GET", "/v1/nope", b"", None, "missing header"),
    ],
)
def test_bad_requests_get_401(agent, case, method, path, body, sign, reason):
    """Unsigned, forged, altered and stale requests are refused with 401 JSON."""
    headers = {}
    if sign is not None:
        sign = dict(sign)
        if "age" in sign:
            sign["timestamp"] = int(time.time()) - sign.pop("age")
        headers = agent.signed(sign.pop("method", method), sign.pop("path", path), sign.pop("body", body), **sign)
    response = agent.raw(method, path, body=body, headers=headers)
    assert response.status == 401, case
    assert reason in response.payload["error"]


def test_request_signed_before_start_gets_401(make_agent):
    """A request signed before the process started is refused, so restarts cannot replay."""
    fresh = make_agent()
    headers = fresh.signed("GET", STATS, timestamp=int(fresh.launched_at) - 1)
    response = fresh.raw("GET", STATS, headers=headers)
    assert response.status == 401
    assert "before the agent started" in response.payload["error"]


def test_replayed_request_gets_401(agent):
    """The same signed request is served once and refused the second time."""
    headers = agent.signed("GET", STATS)
    assert agent.raw("GET", STATS, headers=headers).status == 200
    replay = agent.raw("GET", STATS, headers=headers)
    assert replay.status == 401
    assert "replayed nonce" in replay.payload["error"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/v1/nope", 404), ("POST", STATS, 405), ("GET", "/", 404)],
)
def test_signed_errors_are_json(agent, method, path, status):
    """Routing errors after authentication are JSON, not HTML."""
    response = agent.raw(method, path, headers=agent.signed(method, path))
    assert response.status == status
    assert isinstance(response.payload["error"], str)


def test_rejections_are_logged_without_secrets(agent):
    """The log names the rejected request and reason, never the secret or the signature."""
    headers = agent.signed("GET", "/v1/logged-probe", secret="cd" * 32)
    assert agent.raw("GET", "/v1/logged-probe", headers=headers).status == 401
    log = agent.log_path.read_text()
    line = next(line for line in log.splitlines() if "/v1/logged-probe" in line)
    assert "rejected request from 127.0.0.1" in line and "GET" in line and "bad signature" in line
    everything = log + agent.stderr_path.read_text()
    assert agent.secret not in everything
    assert headers[SIGNATURE_HEADER] not in everything


def test_private_files_are_0600(agent):
    """Config, secret, TLS key and log are readable by their owner only."""
    for path in (agent.config_path, agent.base / "secret", agent.state_dir / "agent.key", agent.log_path):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path


def test_write_config_is_private_even_with_open_umask(tmp_path, private_umask):
    """write_config creates the file 0600 itself rather than relying on the umask."""
    write_config(
        tmp_path / "agent.json",
        root=tmp_path,
        state_dir=tmp_path,
        secret_file=tmp_path / "secret",
        cert_file=tmp_path / "c",
        key_file=tmp_path / "k",
    )
    assert stat.S_IMODE(os.stat(tmp_path / "agent.json").st_mode) == 0o600


@pytest.mark.parametrize(("target", "mode"), [("agent.json", 0o644), ("secret", 0o640), ("agent.json", 0o604)])
def test_loose_permissions_refuse_to_load(agent, tmp_path, target, mode):
    """A config or secret readable by group or others stops the agent from starting."""
    config = json.loads(agent.config_path.read_text())
    config["secret_file"] = str(tmp_path / "secret")
    (tmp_path / "secret").write_text(agent.secret)
    os.chmod(tmp_path / "secret", 0o600)
    write_config(tmp_path / "agent.json", **config)
    os.chmod(tmp_path / target, mode)
    with pytest.raises(ConfigError, match="accessible by group or others"):
        AgentConfig.load(tmp_path / "agent.json")


def test_serve_exits_with_clear_error_on_loose_secret(agent, tmp_path):
    """`python -m agent serve` refuses to start and says what to chmod."""
    config = json.loads(agent.config_path.read_text())
    config["secret_file"] = str(tmp_path / "secret")
    (tmp_path / "secret").write_text(agent.secret)
    os.chmod(tmp_path / "secret", 0o644)
    write_config(tmp_path / "agent.json", **config)
    result = subprocess.run(
        [sys.executable, "-m", "agent", "serve", "--config", str(tmp_path / "agent.json")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 2
    assert "chmod 600" in result.stderr and agent.secret not in result.stderr


def test_sigterm_stops_gracefully(make_agent):
    """SIGTERM ends the process with status 0 and a log line."""
    extra = make_agent()
    assert extra.stop() == 0
    assert "agent stopped" in extra.log_path.read_text()


def test_header_names_are_case_insensitive(agent):
    """HTTP header names are case-insensitive, so lowercase signature headers work."""
    headers = {k.lower(): v for k, v in agent.signed("GET", STATS).items()}
    assert TIMESTAMP_HEADER.lower() in headers
    assert agent.raw("GET", STATS, headers=headers).status == 200


def test_unexpected_errors_are_json_500(app, signed_client):
    """A view that crashes yields a JSON 500 without the traceback."""

    def crash():
        raise RuntimeError("secret detail in a traceback")

    app.add_url_rule("/v1/crash", "crash", crash)
    response = signed_client.get("/v1/crash")
    assert response.status_code == 500
    assert "error" in response.json and "secret detail" not in response.get_data(as_text=True)


def test_oversized_bodies_are_json_413(app, signed_client):
    """Bodies over the limit are refused as JSON before any view runs."""
    app.config["MAX_CONTENT_LENGTH"] = 1024
    response = signed_client.open("PUT", "/v1/stats", json_body={"rows": ["x" * 2048]})
    assert response.status_code == 413
    assert "error" in response.json


def test_in_process_app_also_requires_signatures(app):
    """The app itself enforces signing, whatever server runs it."""
    response = app.test_client().get("/v1/stats")
    assert response.status_code == 401
    assert "missing header" in response.json["error"]


def run_init(tmp_path, *extra):
    """Run `python -m agent init` for a node under tmp_path; returns the completed process."""
    return subprocess.run(
        [
            sys.executable, "-m", "agent", "init",
            "--config", str(tmp_path / "agent.json"),
            "--root", str(tmp_path / "root"),
            "--state-dir", str(tmp_path / "state"),
            "--secret-file", str(tmp_path / "secret"),
            "--listen", "127.0.0.1:9443",
            *extra,
        ],
        cwd=REPO, capture_output=True, text=True, timeout=30,
    )  # fmt: skip


def test_init_prints_fingerprint_never_the_secret_and_is_idempotent(tmp_path):
    """init prints the fingerprint and config; a second run keeps the secret and certificate."""
    first = run_init(tmp_path, "--roles", "web,dns", "--reload-command", "nginx=nginx -s reload")
    assert first.returncode == 0, first.stderr
    printed = json.loads(first.stdout)
    secret = (tmp_path / "secret").read_text().strip()
    assert len(secret) == 64 and secret not in first.stdout + first.stderr
    assert printed["config"]["roles"] == ["web", "dns"]
    assert printed["config"]["reload_commands"] == {"nginx": ["nginx", "-s", "reload"]}
    assert AgentConfig.load(tmp_path / "agent.json").listen_port == 9443
    second = run_init(tmp_path)
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["fingerprint"] == printed["fingerprint"]
    assert (tmp_path / "secret").read_text().strip() == secret


def test_init_refuses_unknown_roles(tmp_path):
    """A role the agent does not know is a clear error, and no config is written."""
    result = run_init(tmp_path, "--roles", "web,ftp")
    assert result.returncode == 2 and "unknown roles ftp" in result.stderr
    assert not (tmp_path / "agent.json").exists()
