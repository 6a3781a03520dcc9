"""SFTP for hosting accounts: OpenSSH's internal-sftp, chrooted to the folder of homes, for the members of
one group (docs/agent-ops.md, "SFTP"). Their public keys live in root's files, one per account, outside
the customer's tree; their password is the crypt(3) hash the master sends, set in /etc/shadow."""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shutil
import stat
import subprocess

from agent import fsutil
from agent import validation as v
from agent.ops import apply

log = logging.getLogger("hostfleet.agent.sftp")

GROUP = "hostfleet-sftp"
SSHD_CONFIG = "etc/ssh/sshd_config"
DROP_IN = "etc/ssh/sshd_config.d/hostfleet-sftp.conf"
KEYS_DIR = "etc/ssh/hostfleet-keys"
CHROOT = "/home"
# The shadow field of an account with no password: locked, no hash matches it.
NO_PASSWORD = "!"
# The programs a logged-in SFTP session runs as, named as /proc shows them: `sshd` up to OpenSSH 9.7,
# `sshd-session` from 9.8 (Debian 13, Ubuntu 24.10 on).
SESSION_PROGRAMS = ("sshd", "sshd-session")
_INCLUDES_DROP_INS = re.compile(r"^\s*Include\s+\S*sshd_config\.d/", re.IGNORECASE | re.MULTILINE)


def sshd_present(config) -> bool:
    """Whether the node has OpenSSH's server configuration under the root prefix."""
    return apply.under_root(config, SSHD_CONFIG).is_file()


def render_drop_in() -> bytes:
    """The sshd drop-in that confines the group's members to SFTP in their homes."""
    return apply.render("sshd-sftp.conf.j2", group=GROUP, chroot=CHROOT, keys_dir="/" + KEYS_DIR)


def with_default_reloads(config):
    """The config with sshd's reload where none is configured (on a real node, root /). A socket-activated
    sshd (no ssh.service running) reads its files at each connection: nothing to reload then."""
    if str(config.root) != "/":
        return config
    reload = (["service", "ssh", "reload"] if getattr(config, "init_system", "systemd") == "sysv"
              else ["systemctl", "try-reload-or-restart", "ssh"])
    return dataclasses.replace(config, reload_commands={"sshd": reload, **config.reload_commands})


def sshd_binary() -> str | None:
    """OpenSSH's server binary, if installed."""
    return shutil.which("sshd") or shutil.which("sshd", path="/usr/sbin:/usr/local/sbin")


def check_sshd(config) -> None:
    """`sshd -t` on the node's whole configuration (the drop-in included); CheckFailed with sshd's words."""
    apply.run_checker("sshd", [sshd_binary() or "sshd", "-t", "-f", str(apply.under_root(config, SSHD_CONFIG))])


def ensure_sshd(config) -> apply.Result:
    """Write the drop-in when it differs, check it with `sshd -t`, reload sshd; a refused check puts the old
    file back and changes nothing. A node without sshd (its configuration or its program) gets nothing."""
    if not sshd_present(config):
        return apply.Result()
    if sshd_binary() is None:
        log.warning("%s exists but sshd is not installed: SFTP for hosting accounts is not configured", SSHD_CONFIG)
        return apply.Result()
    main = fsutil.read_or_none(apply.under_root(config, SSHD_CONFIG)) or b""
    if not _INCLUDES_DROP_INS.search(main.decode("utf-8", "replace")):
        log.warning("%s does not include sshd_config.d/*.conf: SFTP for hosting accounts is not configured there",
                    SSHD_CONFIG)
    path = apply.under_root(config, DROP_IN)
    current = {path: data} if (data := fsutil.read_or_none(path)) is not None else {}
    return apply.apply_files(with_default_reloads(config), {path: render_drop_in()}, current,
                             lambda _written: check_sshd(config), ["sshd"])


def keys_path(config, name: str):
    """The file sshd reads an account's public keys from (root's, outside the customer's home)."""
    return apply.under_root(config, f"{KEYS_DIR}/{v.username(name, 'name')}")


def read_keys(config, name: str) -> list[str]:
    """The public keys an account may log in with."""
    data = fsutil.read_or_none(keys_path(config, name)) or b""
    return [line for line in data.decode("utf-8", "replace").splitlines() if line.strip()]


KEYS_MODE = 0o640


def set_keys(config, name: str, keys: list[str], gid: int) -> bool:
    """Write the account's keys file, or remove it when there are none. True when something changed.

    The file is root's, in the account's group (`gid`), 0640: sshd opens it with the account's IDs, the
    account cannot change it (keys are only those added through the panel), and no other account reads it."""
    if not keys:
        return remove_keys(config, name)
    path = keys_path(config, name)
    wanted = "".join(key + "\n" for key in keys).encode()
    if fsutil.read_or_none(path) == wanted and _keys_file_shaped(path, gid):
        return False
    fsutil.atomic_write(path, wanted, KEYS_MODE, owner=(0, gid))
    return True


def remove_keys(config, name: str) -> bool:
    """Remove the account's keys file; True when there was one."""
    path = keys_path(config, name)
    if not os.path.lexists(path):
        return False
    fsutil.remove(path)
    return True


def _keys_file_shaped(path, gid: int) -> bool:
    """Whether the keys file is root's, in the account's group, of its mode."""
    st = path.lstat()
    return stat.S_IMODE(st.st_mode) == KEYS_MODE and (st.st_uid, st.st_gid) == (0, gid)


def shadow_field(password_hash: str | None, suspended: bool) -> str:
    """The shadow password field for an account: the hash, locked ('!' before it) while suspended."""
    field = password_hash or NO_PASSWORD
    if suspended and not field.startswith("!"):
        return "!" + field
    return field


def set_shadow_field(config, name: str, field: str) -> None:
    """Set the account's shadow password field with `chpasswd -e`, the hash on its standard input (a
    command line is readable by every account on the node)."""
    if ":" in field or "\n" in field:
        raise v.ValidationError("password_hash", "must not hold ':' or a line break")
    try:
        proc = subprocess.run(["chpasswd", "-e", "-R", str(config.root)], input=f"{name}:{field}\n",
                              capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise apply.CheckFailed("users", "chpasswd is not installed") from None
    except subprocess.TimeoutExpired:
        raise apply.CheckFailed("users", "chpasswd did not finish in 60 s") from None
    if proc.returncode != 0:
        raise apply.CheckFailed("users", (proc.stderr or proc.stdout).strip() or f"chpasswd: exit {proc.returncode}")
