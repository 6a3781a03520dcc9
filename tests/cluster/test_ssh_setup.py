"""Host-key pinning, SSH errors and the idempotency of steps 1-4, against an SSH server on loopback."""

from __future__ import annotations

import os
import stat

import pytest

from app.services import setup
from tests.cluster.fakessh import FakeSSHServer
from tests.conftest import free_port


@pytest.fixture
def sshd():
    """An SSH server on 127.0.0.1 in front of a FakeNode."""
    server = FakeSSHServer()
    yield server
    server.close()


def node_input(server: FakeSSHServer, **changes) -> setup.NodeInput:
    """A validated new node pointed at the fake server."""
    values = {"name": "n1", "address": "127.0.0.1", "ssh_port": server.port, "roles": ["web"],
              "password": server.node.root_password, **changes}
    return setup.NodeInput(**values)


def test_host_key_fingerprint_is_openssh_sha256(sshd):
    """The fingerprint shown before login is OpenSSH's SHA256 form of the server's key."""
    key_type, fingerprint = setup.fetch_host_key("127.0.0.1", sshd.port)
    assert key_type == "ssh-ed25519"
    assert fingerprint == setup.fingerprint_of(sshd.host_key)
    assert setup.FINGERPRINT_RE.fullmatch(fingerprint)


def test_changed_host_key_stops_before_any_credential_is_sent(sshd):
    """A pinned fingerprint that does not match: 409 naming the field, and no authentication attempt."""
    wrong = "SHA256:" + "B" * 43
    with pytest.raises(setup.SetupError) as caught:
        setup.connect("127.0.0.1", sshd.port, "root", password=sshd.node.root_password, expected_fingerprint=wrong)
    assert caught.value.status == 409 and caught.value.field == "host_key_fingerprint"
    assert "changed" in caught.value.message and wrong in caught.value.message
    assert sshd.node.auth_attempts == []


def test_wrong_password_says_what_to_check(sshd):
    """A refused root login names the password and PermitRootLogin."""
    with pytest.raises(setup.SetupError) as caught:
        setup.connect("127.0.0.1", sshd.port, "root", password="wrong")
    assert caught.value.field == "password" and "PermitRootLogin" in caught.value.message


def test_unreachable_port_names_the_address():
    """Nothing listens: a clear error on the address."""
    with pytest.raises(setup.SetupError) as caught:
        setup.connect("127.0.0.1", free_port(), "root", password="x")
    assert caught.value.field == "address" and "cannot reach 127.0.0.1" in caught.value.message


def test_master_key_is_made_once_private(app):
    """The master's ed25519 key: generated once in the data dir, mode 0600, same on the next call."""
    with app.app_context():
        first = setup.master_key(app.config["DATA_DIR"])
        second = setup.master_key(app.config["DATA_DIR"])
        path = setup.master_key_path(app.config["DATA_DIR"])
    assert first.get_base64() == second.get_base64() and first.get_name() == "ssh-ed25519"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.with_suffix(".pub").read_text().startswith("ssh-ed25519 ")


def test_bootstrap_twice_changes_the_node_once(app, sshd):
    """Steps 1-3 as root, then the master's key as ispmaster; a second run finds everything done."""
    lines: list[str] = []
    with app.app_context():
        fingerprint = setup.bootstrap(node_input(sshd), app.config["DATA_DIR"], lines.append)
        public = setup.master_public_key(app.config["DATA_DIR"])
    assert fingerprint == setup.fingerprint_of(sshd.host_key)
    assert sshd.node.users["ispmaster"] == (0, 0, "/root") and sshd.node.shadow["ispmaster"] == "*"
    assert sshd.node.authorized == [public]
    assert ("ispmaster", "publickey") in sshd.node.auth_attempts
    assert any("created ispmaster" in line for line in lines)
    first_changes = [c for c in sshd.node.commands if c.startswith(("useradd", "usermod", "umask"))]
    sshd.node.commands.clear()
    lines.clear()
    with app.app_context():
        setup.bootstrap(node_input(sshd, host_key_fingerprint=fingerprint), app.config["DATA_DIR"], lines.append)
    assert len(first_changes) == 3
    assert [c for c in sshd.node.commands if c.startswith(("useradd", "usermod", "umask"))] == []
    assert sshd.node.authorized == [public]
    assert any("already exists with UID 0" in line for line in lines)


@pytest.mark.parametrize("value", ["no", "forced-commands-only"])
def test_permit_root_login_that_forbids_the_admin_key_stops_step_1(app, sshd, value):
    """Root logs in with its password, but sshd would refuse the master's key for UID 0: step 1 says what to change."""
    sshd.node.permit_root_login = "yes"
    original = sshd.node.run

    def run(command, stdin):
        if command.startswith("/usr/sbin/sshd -T"):
            assert "user=ispmaster" in command
            return 0, f"permitrootlogin {value}\n", ""
        return original(command, stdin)

    sshd.node.run = run
    with app.app_context(), pytest.raises(setup.SetupError) as caught:
        setup.bootstrap(node_input(sshd), app.config["DATA_DIR"], lambda _line: None)
    assert f"`PermitRootLogin {value}`" in caught.value.message
    assert "Change it to `PermitRootLogin prohibit-password`" in caught.value.message
    assert "ispmaster" not in sshd.node.users


def test_an_ispmaster_with_another_uid_is_not_taken_over(app, sshd):
    """A user ispmaster that is not UID 0 stops step 2 with a clear error."""
    sshd.node.users["ispmaster"] = (1001, 1001, "/home/ispmaster")
    with app.app_context(), pytest.raises(setup.SetupError, match="already has a user ispmaster with UID 1001"):
        setup.bootstrap(node_input(sshd), app.config["DATA_DIR"], lambda _line: None)


def test_unsupported_os_is_refused(app, sshd):
    """Only Debian 12+ / Ubuntu 22.04+."""
    sshd.node.os_release = 'PRETTY_NAME="CentOS Stream 9"\nID=centos\nVERSION_ID="9"\n'
    with app.app_context(), pytest.raises(setup.SetupError, match="Debian 12"):
        setup.bootstrap(node_input(sshd), app.config["DATA_DIR"], lambda _line: None)


def test_apt_source_step_is_idempotent(app, sshd):
    """Step 4 writes the policy's line once, keeps it on the next run, removes it when the policy is emptied."""
    with app.app_context():
        conn, _ = setup.connect("127.0.0.1", sshd.port, "root", password=sshd.node.root_password)
        s = setup.Session(conn, "127.0.0.1", lambda _line: None)
        line = "deb [trusted=yes] http://198.18.0.1:8018/ ./"
        assert setup.step_apt_source(s, line).startswith("wrote")
        assert sshd.node.files[setup.APT_LIST] == line + "\n"
        assert "already holds" in setup.step_apt_source(s, line)
        assert "removed" in setup.step_apt_source(s, "")
        assert setup.APT_LIST not in sshd.node.files
        with pytest.raises(Exception, match="node_apt_source"):
            setup.step_apt_source(s, "deb http://x/ ./\nrm -rf /")
        conn.close()


def test_private_key_login_for_the_bootstrap(app, sshd):
    """Root's private key instead of a password."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()).decode()
    key = setup.parse_private_key(pem)
    sshd.node.authorized.append(f"{key.get_name()} {key.get_base64()} admin@laptop")
    with app.app_context():
        setup.bootstrap(node_input(sshd, password=None, private_key=key), app.config["DATA_DIR"], lambda _l: None)
    assert ("root", "publickey") in sshd.node.auth_attempts


def test_an_odd_answer_is_a_clear_error_not_a_crash(app, sshd):
    """A node whose shell answers something unexpected gives a SetupError naming the address."""
    original = sshd.node.run
    sshd.node.run = lambda command, stdin: (0, "", "") if "SSH_CONNECTION" in command else original(command, stdin)
    with app.app_context(), pytest.raises(setup.SetupError) as caught:
        setup.bootstrap(node_input(sshd), app.config["DATA_DIR"], lambda _line: None)
    assert caught.value.field == "address" and "answered unexpectedly" in caught.value.message
