"""OS accounts with the UID/GID the master gives, made with shadow-utils under the root prefix."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from pathlib import Path

from agent import fsutil, homefs
from agent import validation as v
from agent.ops import apply, db, dns, mail, sftp, suspension, web

log = logging.getLogger("hostfleet.agent.users")

FIELDS = ("name", "uid", "gid", "shell", "password_hash", "ssh_keys")
ACCOUNT_FILES = ("etc/passwd", "etc/group", "etc/shadow", "etc/gshadow")


def validate(data: object) -> dict:
    """An account: name, uid, gid (defaults to uid), login shell; optionally its SFTP password as a
    crypt(3) hash (null: none) and its public keys. An absent password_hash or ssh_keys is kept as it is
    (a new account then has none)."""
    data = v.object_fields(data, "body", FIELDS)
    uid = v.uid(data.get("uid"), "uid")
    user = {
        "name": v.username(data.get("name"), "name"),
        "uid": uid,
        "gid": v.uid(data.get("gid", uid), "gid"),
        "shell": v.shell(data.get("shell", "/bin/bash"), "shell"),
    }
    if "password_hash" in data:
        user["password_hash"] = (None if data["password_hash"] is None
                                 else v.crypt_hash(data["password_hash"], "password_hash"))
    if "ssh_keys" in data:
        user["ssh_keys"] = v.ssh_public_keys(data["ssh_keys"], "ssh_keys")
    return user


def _table(config, relative: str) -> list[list[str]]:
    """The colon-separated rows of an account file under the root prefix."""
    data = fsutil.read_or_none(apply.under_root(config, relative)) or b""
    return [line.split(":") for line in data.decode("utf-8", "replace").splitlines() if line]


def list_users(config) -> list[dict]:
    """Panel accounts on this node (UIDs a panel user can have)."""
    users = []
    for row in _table(config, "etc/passwd"):
        if len(row) >= 7 and row[2].isdigit() and 1000 <= int(row[2]) < 2**31 and row[2] != "65534":
            users.append({"name": row[0], "uid": int(row[2]), "gid": int(row[3]), "shell": row[6],
                          "home": row[5]})
    return users


def get(config, name: str) -> dict:
    """One account by name."""
    for user in list_users(config):
        if user["name"] == name:
            return user
    raise apply.NotFound("user", name)


def _run(config, argv: list[str]) -> None:
    """Run a shadow-utils command against the root prefix; restore the account files on failure."""
    snapshot = fsutil.Snapshot([apply.under_root(config, f) for f in ACCOUNT_FILES])
    try:
        proc = subprocess.run([*argv[:1], "--prefix", str(config.root), *argv[1:]],
                              capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise apply.CheckFailed("users", f"{argv[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        snapshot.restore()
        raise apply.CheckFailed(
            "users", f"{argv[0]} did not finish in 60 s: check that {config.root}/etc/passwd exists and is not locked"
        ) from None
    if proc.returncode != 0:
        snapshot.restore()
        raise apply.CheckFailed("users", (proc.stderr or proc.stdout).strip())


def _existing_account(config, user: dict) -> dict | None:
    """The panel account of this name if the node has it (same UID and GID), else None; a conflict
    (a system account of the name, the UID or GID another's) raises Conflict."""
    for row in _table(config, "etc/passwd"):
        if row[0] == user["name"]:
            existing = next((u for u in list_users(config) if u["name"] == user["name"]), None)
            if existing is None:  # a system account (root, ispmaster, a package's): never a panel user's
                raise apply.Conflict("name", f"{user['name']} is a system account on this node")
            if (existing["uid"], existing["gid"]) != (user["uid"], user["gid"]):
                raise apply.Conflict("uid", f"{user['name']} exists with UID {existing['uid']}")
            return existing
        if len(row) > 2 and row[2] == str(user["uid"]):
            raise apply.Conflict("uid", f"UID {user['uid']} belongs to {row[0]}")
    return None


def create(config, data: object) -> tuple[dict, bool]:
    """Create the account with SFTP access (idempotent: the same account again changes nothing)."""
    user = validate(data)
    with apply.OP_LOCK:
        # sshd's drop-in first: a configuration sshd refuses stops here, before any account changes.
        sftp.ensure_sshd(config)
        existing = _existing_account(config, user)
        if existing is None:
            _add_account(config, user)
            # A keys file left under the name is an earlier account's: the new one has only its own.
            user.setdefault("ssh_keys", [])
            changed = True
        else:
            changed = existing["shell"] != user["shell"]
            if changed:
                _run(config, ["usermod", "--shell", user["shell"], user["name"]])
        changed = _grant_sftp(config, user) or changed
    return get(config, user["name"]), changed


def _add_account(config, user: dict) -> None:
    """groupadd and useradd with the master's UID/GID, then the home made private."""
    groups = {row[0]: row[2] for row in _table(config, "etc/group") if len(row) > 2}
    if groups.get(user["name"]) not in (None, str(user["gid"])):
        raise apply.Conflict("gid", f"group {user['name']} exists with another GID")
    if user["name"] not in groups and str(user["gid"]) in groups.values():
        raise apply.Conflict("gid", f"GID {user['gid']} belongs to another group")
    home = apply.under_root(config, f"home/{user['name']}")
    if os.path.lexists(home):
        # useradd would keep it as it is: another account's files, or a link to anywhere.
        raise apply.Conflict("name", f"/home/{user['name']} exists already (left by an earlier account?); "
                                     "remove it first")
    if user["name"] not in groups:
        _run(config, ["groupadd", "--gid", str(user["gid"]), user["name"]])
    _run(config, ["useradd", "--uid", str(user["uid"]), "--gid", str(user["gid"]),
                  "--shell", user["shell"], "--home-dir", f"/home/{user['name']}",
                  "--create-home", user["name"]])
    _make_home_private(config, user["name"])


def _grant_sftp(config, user: dict) -> bool:
    """The account in the SFTP group, its password hash and keys as the body gives them, locked while
    its owner is suspended here. True when something changed."""
    changed = False
    row = next((r for r in _table(config, "etc/group") if r[0] == sftp.GROUP), None)
    if row is None:
        _run(config, ["groupadd", "--system", sftp.GROUP])
        members, changed = [], True
    else:
        members = row[3].split(",") if len(row) > 3 and row[3] else []
    if user["name"] not in members:
        _run(config, ["usermod", "--append", "--groups", sftp.GROUP, user["name"]])
        changed = True
    suspended = user["name"] in suspension.owners(config)
    if "password_hash" in user:
        changed = set_login(config, user["name"], suspended, user["password_hash"] or sftp.NO_PASSWORD) or changed
    else:
        changed = set_login(config, user["name"], suspended) or changed
    if "ssh_keys" in user:
        changed = sftp.set_keys(config, user["name"], user["ssh_keys"], user["gid"]) or changed
    return changed


def set_login(config, name: str, locked: bool, password_field: str | None = None) -> bool:
    """Lock or unlock an account's logins (SFTP with a password or a key): a '!' before the hash, and the
    account expired (PAM's account check, which sshd runs for key logins too, refuses an expired account).
    `password_field` replaces the hash. An account the node lacks changes nothing. True when changed."""
    row = next((r for r in _table(config, "etc/shadow") if r[0] == name), None)
    if row is None or name not in apply.hosting_users(config):
        return False
    row += [""] * (9 - len(row))
    current, expire = row[1], row[7]
    base = password_field if password_field is not None else (current.lstrip("!") or sftp.NO_PASSWORD)
    wanted = sftp.shadow_field(base.lstrip("!") or sftp.NO_PASSWORD, locked)
    changed = False
    if current != wanted:
        sftp.set_shadow_field(config, name, wanted)
        changed = True
    wanted_expire = "1" if locked else ""
    if expire != wanted_expire:
        _run(config, ["usermod", "--expiredate", wanted_expire, name])
        changed = True
    return changed


def _make_home_private(config, name: str) -> None:
    """The new home as agent/homefs.py shapes homes: `<name>:www-data 0710` (useradd leaves Debian's
    0755, which lets every other account read it). Set on an open handle of the home, not by path."""
    with homefs.Home(config, homefs.account(config, name, "name"), "name") as home:
        home.make_private()


def update(config, name: str, data: object) -> dict:
    """Change an account's shell (UID and GID are fixed by the master)."""
    with apply.OP_LOCK:
        old = get(config, name)
        if not isinstance(data, dict):
            raise v.ValidationError("body", "must be a JSON object")
        user, _ = create(config, {"name": name, "uid": old["uid"], "gid": old["gid"],
                                  **{k: val for k, val in data.items() if k != "name"}})
    return user


def owned_data(config, name: str) -> list[str]:
    """What this user still owns on this node."""
    held = [f"web domain {d['name']}" for d in web.list_domains(config) if d["owner"] == name]
    held += [f"domain {d['name']}" for d in dns.list_domains(config) if d["owner"] == name]
    held += [f"mail domain {d['name']}" for d in mail.list_domains(config) if d["owner"] == name]
    held += [f"database {d['name']}" for d in db.list_databases(config, with_size=False) if d["owner"] == name]
    held += [f"database user {u['name']}" for u in db.list_users(config, with_grants=False) if u["owner"] == name]
    return held


def end_processes(config, name: str, names: tuple[str, ...] = ()) -> list[int]:
    """SIGKILL the account's processes (only those whose command is one of `names`, when given: sftp.SESSION_PROGRAMS
    are an SFTP session's); wait until they are gone. On a real node only (root /): a private root's UIDs are
    not the host's. Returns the pids."""
    if str(config.root) != "/":
        return []
    uid = str(get(config, name)["uid"])
    victims = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            status = dict(line.split(":", 1) for line in Path(entry.path, "status").read_text().splitlines()
                          if ":" in line)
        except OSError:
            continue
        if uid in status.get("Uid", "").split() and (not names or status.get("Name", "").strip() in names):
            victims.append(int(entry.name))
    for pid in victims:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in victims):
        time.sleep(0.05)
    if victims:
        log.info("ended %d processes of %s: %s", len(victims), name, victims)
    return victims


def _remove_home(config, name: str, home: str) -> None:
    """Delete a removed account's home: left behind, a later account given the same UID would own the
    old customer's files, and one given the same name would find a home it cannot write (useradd
    keeps an existing folder as it is). Only the panel's own layout, /home/<name>, is touched."""
    if home != f"/home/{name}":
        log.warning("kept %s's home %s: not the panel's /home/%s", name, home, name)
        return
    try:
        homefs.remove_tree(apply.under_root(config, "home"), name)
    except OSError as exc:
        log.warning("could not remove %s's home %s: %s", name, home, exc)


def purge(config, name: str) -> dict:
    """Remove everything an owner holds on this node, one apply per service (mail, then web, then
    DNS), before the account itself is deleted; what was removed, by kind. Holding nothing, or an
    unknown name, removes nothing: repeating it is harmless."""
    name = v.username(name, "name")
    with apply.OP_LOCK:
        mailboxes, maildomains = mail.purge_owner(config, name)
        webdomains = web.purge_owner(config, name)
        domains = dns.purge_owner(config, name)
        removed = {"mailboxes": mailboxes, "maildomains": maildomains, "webdomains": webdomains, "domains": domains}
        if "db" in getattr(config, "roles", ()):
            removed["dbusers"], removed["databases"] = db.purge_owner(config, name)
    return removed


def delete(config, name: str) -> None:
    """Remove the account and its home (document roots included); refused while it owns data here."""
    with apply.OP_LOCK:
        home = get(config, name)["home"]
        held = owned_data(config, name)
        if held:
            raise apply.Conflict("name", f"{name} still owns {', '.join(held)}")
        # A PHP pool outlives its owner's sites (web.render_files); php-fpm would refuse one whose user is gone.
        web.purge_owner(config, name)
        # userdel refuses an account with a process left (an open SFTP session, a pool worker finishing).
        end_processes(config, name)
        _run(config, ["userdel", name])
        sftp.remove_keys(config, name)
        _remove_home(config, name, home)
        if any(row[0] == name for row in _table(config, "etc/group")):
            _run(config, ["groupdel", name])
        # A suspension ends with its account: a later account of the same name starts active. Nothing
        # of this owner is left to render, so the stored set is all that changes.
        if name in (suspended := suspension.owners(config)):
            apply.save_records(config, suspension.KIND, sorted(suspended - {name}))
