"""SFTP for hosting accounts: sshd's drop-in, the SFTP group, the password hash, public keys, suspension."""

from __future__ import annotations

import base64
import os

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from agent.ops import apply, mail, sftp, suspension, users, web
from agent.tests.ops_helpers import config_digest, make_config, require_binary
from agent.validation import ValidationError, crypt_hash, ssh_public_key, ssh_public_keys

CAROL = {"name": "carol", "uid": 2001, "gid": 2001, "shell": "/bin/bash"}
HASH = "$6$saltsalt$" + "a" * 86
OTHER_HASH = "$y$j9T$abcdefghijklmnop$" + "b" * 43


def openssh(public_key) -> str:
    """A public key as an authorized_keys line."""
    return public_key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


ED25519 = openssh(ed25519.Ed25519PrivateKey.generate().public_key())
RSA_2048 = openssh(rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key())
ECDSA = openssh(ec.generate_private_key(ec.SECP256R1()).public_key())


@pytest.fixture
def agent(tmp_path):
    """A config under a private root; shadow-utils must be installed."""
    require_binary("useradd", "groupadd", "userdel", "usermod", "chpasswd")
    return make_config(tmp_path)


def shadow_row(config, name: str) -> list[str]:
    """The account's row of the root prefix's /etc/shadow."""
    return next(line.split(":") for line in (config.root / "etc/shadow").read_text().splitlines()
                if line.startswith(name + ":"))


def sftp_members(config) -> list[str]:
    """The members of the SFTP group in the root prefix's /etc/group."""
    row = next(line.split(":") for line in (config.root / "etc/group").read_text().splitlines()
               if line.startswith(sftp.GROUP + ":"))
    return [m for m in row[3].split(",") if m]


def test_drop_in_confines_the_group_to_chrooted_sftp():
    """Only the SFTP group is matched: internal-sftp in its own home, chrooted to /home, no TTY or
    forwarding, keys from root's files."""
    text = sftp.render_drop_in().decode()
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert lines[0] == f"Match Group {sftp.GROUP}"
    for wanted in ("ChrootDirectory /home", "ForceCommand internal-sftp -d /%u",
                   "AuthorizedKeysFile /etc/ssh/hostfleet-keys/%u", "PermitTTY no", "PermitTunnel no",
                   "AllowTcpForwarding no", "AllowAgentForwarding no", "AllowStreamLocalForwarding no",
                   "X11Forwarding no"):
        assert wanted in lines
    assert sum(line.startswith("Match") for line in lines) == 1


def test_account_joins_the_group_with_its_hash_and_keys(agent):
    """create puts the account in the SFTP group, its hash in shadow, its keys in root's file; the
    same body again changes nothing."""
    config, _ = agent
    _user, changed = users.create(config, {**CAROL, "password_hash": HASH, "ssh_keys": [ED25519]})
    assert changed
    assert sftp_members(config) == ["carol"]
    assert shadow_row(config, "carol")[1] == HASH
    keys = config.root / sftp.KEYS_DIR / "carol"
    assert keys.read_text() == ED25519 + "\n"
    assert keys.stat().st_mode & 0o777 == 0o640
    assert (keys.stat().st_uid, keys.stat().st_gid) == (0, CAROL["gid"])
    before = config_digest(config)
    _user, changed = users.create(config, {**CAROL, "password_hash": HASH, "ssh_keys": [ED25519]})
    assert changed is False and config_digest(config) == before


def test_a_keys_file_readable_by_every_account_is_closed(agent):
    """A keys file of the mode earlier agents wrote (0644: every account on the node read every customer's
    keys and their comments) is given the account's group and 0640 at the next change of the account."""
    config, _ = agent
    users.create(config, {**CAROL, "ssh_keys": [ED25519]})
    keys = config.root / sftp.KEYS_DIR / "carol"
    os.chown(keys, 0, 0)
    keys.chmod(0o644)
    _user, changed = users.create(config, {**CAROL, "ssh_keys": [ED25519]})
    assert changed
    assert keys.stat().st_mode & 0o777 == 0o640 and keys.stat().st_gid == CAROL["gid"]


def test_new_hash_and_keys_replace_the_old_and_absent_fields_are_kept(agent):
    """A new hash replaces the old; a body without password_hash or ssh_keys keeps them; no keys
    removes the file; null is no password."""
    config, _ = agent
    users.create(config, {**CAROL, "password_hash": HASH, "ssh_keys": [ED25519, RSA_2048]})
    users.create(config, {**CAROL, "password_hash": OTHER_HASH})
    assert shadow_row(config, "carol")[1] == OTHER_HASH
    assert sftp.read_keys(config, "carol") == [ED25519, RSA_2048]
    users.update(config, "carol", {"shell": "/bin/bash", "ssh_keys": []})
    assert not (config.root / sftp.KEYS_DIR / "carol").exists()
    assert shadow_row(config, "carol")[1] == OTHER_HASH
    users.create(config, {**CAROL, "password_hash": None})
    assert shadow_row(config, "carol")[1] == sftp.NO_PASSWORD


def test_suspension_locks_the_login_and_resuming_unlocks_it(agent):
    """Suspended: '!' before the hash and the account expired (PAM refuses keys too); a hash sent while
    suspended stays locked; resumed: the latest hash, not expired."""
    config, _ = agent
    users.create(config, {**CAROL, "password_hash": HASH})
    suspension.set_suspended(config, "carol", {"suspended": True})
    row = shadow_row(config, "carol")
    assert row[1] == "!" + HASH and row[7] == "1"
    users.create(config, {**CAROL, "password_hash": OTHER_HASH})
    assert shadow_row(config, "carol")[1] == "!" + OTHER_HASH
    suspension.set_suspended(config, "carol", {"suspended": False})
    row = shadow_row(config, "carol")
    assert row[1] == OTHER_HASH and row[7] == ""


def test_suspension_ends_open_sftp_sessions_of_every_openssh(agent, monkeypatch):
    """A session already logged in is ended with the suspension: its process is `sshd` up to OpenSSH 9.7 and
    `sshd-session` from 9.8 (Debian 13, Ubuntu 24.10), where the session runs in a program of its own."""
    config, _ = agent
    users.create(config, {**CAROL, "password_hash": HASH})
    ended = []
    monkeypatch.setattr(users, "end_processes", lambda _config, name, names=(): ended.append((name, names)))
    suspension.set_suspended(config, "carol", {"suspended": True})
    assert [name for name, _names in ended] == ["carol"]
    assert {"sshd", "sshd-session"} <= set(ended[0][1])


def test_suspension_on_a_node_without_web_or_mail_renders_neither(agent):
    """A node holding neither role nor their data (a web-only node has no exim to check mail files with)
    suspends the login alone: no nginx or exim file is written, no service reloaded."""
    config, reloads = agent
    users.create(config, {**CAROL, "password_hash": HASH})
    result = suspension.set_suspended(config, "carol", {"suspended": True})
    assert result["changed"] and shadow_row(config, "carol")[1] == "!" + HASH
    assert not (config.root / mail.EXIM_CONF).exists()
    assert not (config.root / web.INCLUDE).exists()
    assert reloads.calls() == []


def test_delete_removes_the_keys_and_the_membership(agent):
    """A deleted account leaves no keys file and no group membership."""
    config, _ = agent
    users.create(config, {**CAROL, "ssh_keys": [ED25519]})
    users.delete(config, "carol")
    assert not (config.root / sftp.KEYS_DIR / "carol").exists()
    assert sftp_members(config) == []


def test_a_new_account_never_takes_a_keys_file_left_under_its_name(agent):
    """A keys file left by an earlier account of the name (removed by hand, or its delete cut short) would let
    that account's owner log in as the new one: a new account starts with only the keys its body gives."""
    config, _ = agent
    left = config.root / sftp.KEYS_DIR / "carol"
    left.parent.mkdir(parents=True, exist_ok=True)
    left.write_text(RSA_2048 + "\n")
    users.create(config, CAROL)
    assert sftp.read_keys(config, "carol") == []
    users.delete(config, "carol")
    left.write_text(RSA_2048 + "\n")
    users.create(config, {**CAROL, "ssh_keys": [ED25519]})
    assert sftp.read_keys(config, "carol") == [ED25519]


def test_no_sshd_no_drop_in(agent, monkeypatch):
    """A node without sshd's configuration (a private root), or without sshd, gets no drop-in, and accounts
    are made."""
    config, reloads = agent
    users.create(config, CAROL)
    assert not (config.root / sftp.DROP_IN).exists()
    (config.root / "etc/ssh").mkdir(parents=True)
    (config.root / sftp.SSHD_CONFIG).write_text("Include /etc/ssh/sshd_config.d/*.conf\n")
    monkeypatch.setattr(sftp, "sshd_binary", lambda: None)
    users.create(config, {**CAROL, "name": "dave", "uid": 2002, "gid": 2002})
    assert not (config.root / sftp.DROP_IN).exists()
    assert "sshd" not in reloads.calls()


def test_a_refused_check_changes_nothing(agent, monkeypatch):
    """sshd's check refusing the drop-in: the file is put back as it was, nothing reloaded, no account made."""
    config, reloads = agent
    (config.root / "etc/ssh/sshd_config.d").mkdir(parents=True)
    (config.root / sftp.SSHD_CONFIG).write_text("Include /etc/ssh/sshd_config.d/*.conf\n")
    (config.root / sftp.DROP_IN).write_text("# an older drop-in\n")

    def refuse(argv):
        raise apply.CheckFailed("sshd", "Bad configuration option: ForceCommand")

    monkeypatch.setattr(sftp.apply, "run_checker", lambda service, argv: refuse(argv))
    monkeypatch.setattr(sftp, "sshd_binary", lambda: "/usr/sbin/sshd")
    before = config_digest(config)
    with pytest.raises(apply.CheckFailed) as refused:
        users.create(config, CAROL)
    assert "ForceCommand" in refused.value.message
    assert config_digest(config) == before
    assert "carol" not in (config.root / "etc/passwd").read_text()
    assert reloads.calls() == []


def test_drop_in_written_checked_and_reloaded(agent, monkeypatch):
    """With sshd's configuration present, the drop-in is written, `sshd -t -f` runs on the whole
    configuration, sshd is reloaded once; the next account changes no file."""
    config, reloads = agent
    (config.root / "etc/ssh").mkdir(parents=True)
    (config.root / sftp.SSHD_CONFIG).write_text("Include /etc/ssh/sshd_config.d/*.conf\n")
    checked = []
    monkeypatch.setattr(sftp.apply, "run_checker", lambda service, argv: checked.append(argv) or "")
    monkeypatch.setattr(sftp, "sshd_binary", lambda: "/usr/sbin/sshd")
    config.reload_commands["sshd"] = config.reload_commands["nginx"][:-1] + ["sshd"]
    users.create(config, CAROL)
    assert (config.root / sftp.DROP_IN).read_bytes() == sftp.render_drop_in()
    assert checked == [["/usr/sbin/sshd", "-t", "-f", str(config.root / sftp.SSHD_CONFIG)]]
    assert reloads.calls() == ["sshd"]
    users.create(config, {**CAROL, "name": "dave", "uid": 2002, "gid": 2002})
    assert reloads.calls() == ["sshd"] and len(checked) == 1


def test_real_sshd_accepts_the_drop_in(tmp_path):
    """The real `sshd -t` accepts the drop-in included by a main configuration (where sshd is installed;
    the lab's nodes run it for real)."""
    binary = sftp.sshd_binary()
    if binary is None:
        pytest.skip("sshd is not installed here")
    import subprocess

    key = tmp_path / "host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    (tmp_path / "sftp.conf").write_bytes(sftp.render_drop_in())
    main = tmp_path / "sshd_config"
    # A HostKey after the Include: sshd refuses one inside a Match, so this also shows the Match ends there.
    main.write_text(f"Include {tmp_path}/sftp.conf\nHostKey {key}\nUsePAM yes\n")
    proc = subprocess.run([binary, "-t", "-f", str(main)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("key", [ED25519, RSA_2048, ECDSA, ED25519 + " carol@laptop", "  " + ED25519 + "  "])
def test_good_keys_accepted(key):
    """Every supported type, with or without a comment, normalized to single spaces."""
    assert ssh_public_key(key) == " ".join(key.split())


SHORT_RSA = openssh(rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key())
_TYPE, _DATA = ED25519.split()


@pytest.mark.parametrize("value, message", [
    ("", "empty"),
    (None, "string"),
    ("ssh-dss AAAAB3NzaC1kc3M=", "key type"),
    ('command="sh" ' + ED25519, "key type"),
    ("ssh-ed25519", "no key data"),
    ("ssh-ed25519 not*base64", "base64"),
    (f"ssh-rsa {_DATA}", "not a ssh-rsa key"),
    ("ssh-ed25519 " + base64.b64encode(b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x05short").decode(), "whole"),
    ("ssh-ed25519 " + base64.b64encode(b"\x00\x00\x00\x40ssh").decode(), "truncated"),
    ("ssh-ed25519 " + "A" * 4000, "over"),
    (SHORT_RSA, "too weak"),
    (ED25519 + "\n" + RSA_2048, "control character"),
    (ED25519 + " $(reboot)", "comment"),
])
def test_bad_keys_refused_naming_the_field(value, message):
    """Bad keys: wrong or unknown type, options, bad base64, data of another type, short RSA, two lines."""
    with pytest.raises(ValidationError) as refused:
        ssh_public_key(value, "key")
    assert refused.value.field == "key"
    assert message in refused.value.message


def test_key_lists_name_the_bad_item_and_refuse_repeats():
    """A list names the item at fault; the same key twice is refused."""
    with pytest.raises(ValidationError) as refused:
        ssh_public_keys([ED25519, "ssh-ed25519 !"])
    assert refused.value.field == "ssh_keys[1]"
    with pytest.raises(ValidationError) as refused:
        ssh_public_keys([ED25519, ED25519 + " again"])
    assert refused.value.field == "ssh_keys[1]"
    with pytest.raises(ValidationError):
        ssh_public_keys([ED25519] * 21)


@pytest.mark.parametrize("value", ["plain", "$1$md5$abc", HASH + ":0:0", HASH + "\n", "!" + HASH, "$6$x$short", 5])
def test_bad_hashes_refused(value):
    """Only yescrypt or sha512-crypt hashes; nothing that could add a shadow field or line."""
    with pytest.raises(ValidationError) as refused:
        crypt_hash(value)
    assert refused.value.field == "password_hash"


def test_bad_account_bodies_change_nothing(agent):
    """A bad hash or key in the account body: 400 naming the field, no file touched."""
    config, _ = agent
    before = config_digest(config)
    for body, field in (({**CAROL, "password_hash": "x:0"}, "password_hash"),
                        ({**CAROL, "ssh_keys": ["ssh-rsa AAAA"]}, "ssh_keys[0]")):
        with pytest.raises(ValidationError) as refused:
            users.create(config, body)
        assert refused.value.field == field
    assert config_digest(config) == before
