"""`make run` end to end: one command brings up everything, Ctrl-C stops it, data is reused."""

import re

import psutil
import pytest
import redis
import requests

from tests.panel import new_panel

pytestmark = pytest.mark.slow


def test_run_starts_everything_and_ctrl_c_stops_it(tmp_path):
    panel = new_panel(tmp_path).start()
    try:
        text = "".join(panel.output)
        assert f"URL:       http://127.0.0.1:{panel.port}/" in text
        assert "user name: admin" in text and panel.password
        children = panel.descendants()
        names = " ".join(" ".join(psutil.Process(pid).cmdline()) for pid in children)
        for part in ("redis-server", "agent serve", "worker.py default", "worker.py periodic", "app.cron",
                     "gunicorn"):
            assert part in names, f"{part} is not running"
        # The embedded Redis has a password, kept out of every command line (customers' code on this
        # server reaches loopback and reads /proc/*/cmdline); the periodic ticks below prove the signed
        # jobs run.
        password = (panel.data / "redis" / "password").read_text().strip()
        assert len(password) >= 32 and password not in names
        port = int(re.search(r"embedded Redis on 127\.0\.0\.1:(\d+)", text).group(1))
        with pytest.raises(redis.exceptions.AuthenticationError):
            redis.Redis(port=port).set("hostfleet:probe", "1")
        assert redis.Redis(port=port, password=password).ping()
        node = panel.wait_ready()
        # The local node's agent closed loopback to hosting accounts at its start (no list pushed yet).
        ruleset = (panel.data / "local-node" / "root" / "etc" / "hostfleet" / "firewall.nft").read_text()
        assert "meta skuid 10000-59999 ip daddr 127.0.0.0/8 reject" in ruleset
        assert node["name"] == "local" and node["is_local"] and node["stats"]["memory_used_percent"] is not None
        login_page = requests.get(panel.url + "/login", timeout=5)
        assert login_page.status_code == 200 and "gunicorn" in login_page.headers.get("Server", "")
        # Long-lived processes keep what they loaded at start out of full garbage collections (a
        # full pass over it was a 60-85 ms pause in whatever request it landed in).
        for log in ("web", "worker-1", "worker-periodic"):
            assert "froze" in (panel.data / "logs" / f"{log}.log").read_text(), f"{log} froze nothing"
    finally:
        code = panel.stop()
    assert code == 0
    assert "stopped every process it started" in "".join(panel.output)
    assert not [pid for pid in children if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
    for secret_file in (panel.data / "secret_key", panel.data / "initial-admin-password",
                        panel.data / "local-node" / "secret", panel.data / "local-node" / "agent.json",
                        panel.data / "redis" / "password", panel.data / "redis" / "redis.conf"):
        assert secret_file.stat().st_mode & 0o077 == 0, f"{secret_file} must be private"

    again = new_panel(tmp_path)
    again.port = panel.port
    again.start()
    try:
        assert again.password == panel.password, "the second run reuses the same admin"
        assert "Running upgrade" not in "".join(again.output)
        node = again.wait_ready(30)
        assert node["id"] == 1
        history = again.api(f"/api/v1/nodes/{node['id']}").json()
        assert history["state"] == "ready"
    finally:
        again.stop()
    assert again.startup_s < 15, f"a warm start took {again.startup_s:.1f} s"


def test_admin_password_from_the_environment(tmp_path):
    panel = new_panel(tmp_path).start(env={"ADMIN_PASSWORD": "given-by-the-operator"})
    try:
        assert panel.password == "given-by-the-operator"
        assert panel.api("/api/v1/nodes").status_code == 200
        assert not (panel.data / "initial-admin-password").exists()
    finally:
        panel.stop()


def test_the_number_of_job_workers_is_checked(monkeypatch):
    """HOSTFLEET_WORKERS: two by default; anything but a whole number ≥ 1 stops the runner with the variable named."""
    from app.runner import job_workers

    monkeypatch.delenv("HOSTFLEET_WORKERS", raising=False)
    assert job_workers() == 2
    monkeypatch.setenv("HOSTFLEET_WORKERS", "3")
    assert job_workers() == 3
    for bad in ("0", "-1", "two", ""):
        monkeypatch.setenv("HOSTFLEET_WORKERS", bad)
        with pytest.raises(SystemExit, match="HOSTFLEET_WORKERS"):
            job_workers()
