"""SFTP on a real Debian node: OpenSSH's internal-sftp, chrooted, with the panel password and a key.

One lab node is added through the API with the web role and reaches `ready`; two hosting users are placed on
it. Everything is checked from the host with paramiko (the SSH library Fabric runs on) and curl, never by
reading the node's files: the customer uploads into their site's document root and nginx serves the file,
sees neither /etc nor another home, cannot run a command or forward a port; a wrong password, the old
password after a change, a suspended account and a deleted one are refused; the master's own UID 0 login
(the key setup registered) still works beside the SFTP drop-in.
"""

from __future__ import annotations

import io
import time
import uuid

import paramiko
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.cluster.labpanel import LabPanel, reset
from tests.userdata.test_lab_services import curl

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

USER, OTHER = "sftpcarol", "sftpdave"
PASSWORD, NEW_PASSWORD = "a long lab password", "another lab password"
SITE = "sftp-lab.test"


class Env:
    """The panel, the lab node and the users' ids."""

    def __init__(self, panel: LabPanel, node, ids: dict[str, int]):
        self.panel, self.node, self.ids = panel, node, ids

    @property
    def address(self) -> str:
        return self.node.address

    def as_user(self, method: str, path: str, json=None, user: str = USER, password: str = PASSWORD):
        """An API call with the user's own credentials."""
        return requests.request(method, self.panel.url + path, json=json, auth=(user, password), timeout=120)


@pytest.fixture(scope="module")
def env(lab_nodes, tmp_path_factory):
    """A fresh lab node with the web role (ready), two hosting users on it, a site of the first."""
    from tests.lab.lab import Lab

    node = lab_nodes(1)[0]
    reset(node)
    # Its own UID range: the node keeps the hosting accounts earlier modules' panels made there (from 10000),
    # and the agent refuses a UID another account holds.
    panel = LabPanel(tmp_path_factory.mktemp("labsftp"), Lab().repo_line,
                     env={"HOSTFLEET_UID_RANGE": "30000-30999"}).start()
    try:
        added = panel.add(node, "sftp1", roles=["web"])
        assert added.status_code == 202, added.text
        node_id = added.json()["node"]["id"]
        panel.wait_state(node_id, "ready", timeout=900)
        ids = {}
        for name in (USER, OTHER):
            made = panel.request("POST", "/api/v1/users", {"name": name, "password": PASSWORD, "roles": ["web"],
                                                           "nodes": {"web": "sftp1"}})
            assert made.status_code == 201, made.text
            ids[name] = made.json()["id"]
        site = panel.request("POST", "/api/v1/webdomains", {"name": SITE, "owner": USER})
        assert site.status_code == 201, site.text
        yield Env(panel, node, ids)
    finally:
        panel.stop()


def connect(address: str, user: str, password: str | None = None, pkey=None) -> paramiko.SSHClient:
    """An SSH connection (paramiko); AuthenticationException when refused."""
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(address, username=user, password=password, pkey=pkey, look_for_keys=False, allow_agent=False,
                   timeout=15, auth_timeout=15, banner_timeout=15)
    return client


def refused(address: str, user: str, password: str | None = None, pkey=None) -> bool:
    """True when sshd refuses the login (or gives no SFTP session)."""
    try:
        client = connect(address, user, password, pkey)
    except paramiko.AuthenticationException:
        return True
    try:
        client.open_sftp().listdir(".")
    except (paramiko.SSHException, OSError, EOFError):
        return True
    finally:
        client.close()
    return False


def new_key() -> tuple[paramiko.Ed25519Key, str]:
    """A fresh ed25519 key: paramiko's private key and the public key line."""
    private = ed25519.Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption()).decode()
    public = private.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                               serialization.PublicFormat.OpenSSH).decode()
    return paramiko.Ed25519Key.from_private_key(io.StringIO(pem)), public + " lab"


def test_password_login_upload_is_served_by_nginx(env):
    """The customer logs in with the panel password, starts in their home, uploads into the site's document
    root; nginx on the node serves the file."""
    client = connect(env.address, USER, PASSWORD)
    try:
        sftp = client.open_sftp()
        assert sftp.normalize(".") == f"/{USER}"
        body = f"uploaded over sftp {uuid.uuid4()}\n"
        sftp.putfo(io.BytesIO(body.encode()), f"/{USER}/www/{SITE}/sftp.txt")
    finally:
        client.close()
    deadline = time.monotonic() + 15
    status, seen = curl(env.address, SITE, "/sftp.txt")
    while status != 200 and time.monotonic() < deadline:
        time.sleep(0.5)
        status, seen = curl(env.address, SITE, "/sftp.txt")
    assert (status, seen) == (200, body)


def test_no_etc_no_other_home_no_command_no_forwarding(env):
    """Chrooted to the homes: no /etc (nor one reached by `..`); another home is closed; a command gets no
    shell and a port forward is refused."""
    client = connect(env.address, USER, PASSWORD)
    try:
        sftp = client.open_sftp()
        assert "etc" not in sftp.listdir("/")
        for folder in ("/etc", f"/{USER}/../../etc"):
            with pytest.raises(OSError):
                sftp.listdir(folder)
        with pytest.raises(OSError):
            sftp.open("/etc/passwd").read()
        with pytest.raises(PermissionError):
            sftp.listdir(f"/{OTHER}")
        with pytest.raises(PermissionError):
            sftp.open(f"/{OTHER}/.profile").read()
        transport = client.get_transport()
        with pytest.raises(paramiko.ChannelException):
            transport.open_channel("direct-tcpip", ("127.0.0.1", 22), ("127.0.0.1", 0), timeout=10)
        channel = transport.open_session(timeout=10)
        channel.settimeout(3)
        channel.exec_command("echo shell-ran; cat /etc/hostname")
        try:
            output = channel.recv(4096)
        except TimeoutError:
            output = b""
        assert b"shell-ran" not in output
        channel.close()
    finally:
        client.close()


def test_wrong_password_refused(env):
    """A wrong password (and another customer's) is refused."""
    assert refused(env.address, USER, "not the password")
    assert refused(env.address, OTHER, "not the password")


def test_key_login(env):
    """A key the customer adds through the API logs in; one not added does not; deleted, it no longer does."""
    key, public = new_key()
    stranger, _ = new_key()
    added = env.as_user("POST", f"/api/v1/users/{env.ids[USER]}/sshkeys", {"key": public})
    assert added.status_code == 201, added.text
    assert [n["outcome"] for n in added.json()["nodes"]] == ["applied"]
    client = connect(env.address, USER, pkey=key)
    try:
        assert "www" in client.open_sftp().listdir(f"/{USER}")
    finally:
        client.close()
    assert refused(env.address, USER, pkey=stranger)
    assert refused(env.address, OTHER, pkey=key)
    deleted = env.as_user("DELETE", f"/api/v1/users/{env.ids[USER]}/sshkeys/{added.json()['id']}")
    assert deleted.status_code == 200
    assert refused(env.address, USER, pkey=key)


def test_password_change_old_refused_new_works(env):
    """After the panel password changes, the old one is refused over SFTP and the new one logs in."""
    changed = env.panel.request("PUT", f"/api/v1/users/{env.ids[OTHER]}", {"password": NEW_PASSWORD})
    assert changed.status_code == 200, changed.text
    assert refused(env.address, OTHER, PASSWORD)
    connect(env.address, OTHER, NEW_PASSWORD).close()


def test_suspended_account_refused_with_password_and_key(env):
    """Suspended: the password and a key are refused, an open session ends; resumed: both work again."""
    key, public = new_key()
    assert env.as_user("POST", f"/api/v1/users/{env.ids[USER]}/sshkeys", {"key": public}).status_code == 201
    session = connect(env.address, USER, pkey=key)
    suspended = env.panel.request("PUT", f"/api/v1/users/{env.ids[USER]}", {"active": False})
    assert suspended.status_code == 200, suspended.text
    try:
        assert [n["outcome"] for n in suspended.json()["nodes"]] == ["applied"], suspended.text
        assert refused(env.address, USER, PASSWORD)
        assert refused(env.address, USER, pkey=key)
        with pytest.raises((OSError, EOFError, paramiko.SSHException)):
            session.open_sftp().listdir(".")
    finally:
        session.close()
        assert env.panel.request("PUT", f"/api/v1/users/{env.ids[USER]}", {"active": True}).status_code == 200
    connect(env.address, USER, PASSWORD).close()
    connect(env.address, USER, pkey=key).close()


def test_masters_root_login_still_works(env):
    """The master's own login (ispmaster, UID 0, with its key) gets a shell as before, not SFTP."""
    key = paramiko.Ed25519Key.from_private_key_file(str(env.panel.data / "ssh" / "id_ed25519"))
    client = connect(env.address, "ispmaster", pkey=key)
    try:
        _, out, _ = client.exec_command("id -u; test -f /etc/ssh/sshd_config.d/hostfleet-sftp.conf && echo drop-in",
                                        timeout=30)
        assert out.read().decode().split() == ["0", "drop-in"]
    finally:
        client.close()


def test_deleted_account_is_gone(env):
    """A deleted user no longer logs in, even one whose SFTP session was open (the agent ends it)."""
    open_session = connect(env.address, OTHER, NEW_PASSWORD)
    open_session.open_sftp().listdir(".")
    deleted = env.panel.request("DELETE", f"/api/v1/users/{env.ids[OTHER]}")
    assert deleted.status_code == 200, deleted.text
    with pytest.raises((OSError, EOFError, paramiko.SSHException)):
        open_session.open_sftp().listdir(".")
    open_session.close()
    assert refused(env.address, OTHER, NEW_PASSWORD)
