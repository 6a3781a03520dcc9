"""Mail domains, mailboxes (dovecot passwd-file), forwarding and the sender lists exim's ACLs read."""

from __future__ import annotations

import functools
import ipaddress
import logging
import re
import socket
import subprocess
import tempfile
from pathlib import Path

from agent import fsutil, homefs, shacrypt
from agent import validation as v
from agent.ops import apply, suspension

log = logging.getLogger("hostfleet.agent.mail")

DOMAINS_KIND = "maildomains"
MAILBOXES_KIND = "mailboxes"
EXIM_DIR = "etc/exim4/hostfleet"
EXIM_CONF = "etc/exim4/exim4.conf"
# The group Debian's exim runs its receiving processes as: the only reader of the lists besides root.
EXIM_GROUP = "Debian-exim"
DOVECOT_DIR = "etc/dovecot/hostfleet"
DOVECOT_CONF = "etc/dovecot/hostfleet.conf"
# Debian's dovecot reads only dovecot.conf: the node's copy says to read the panel's file instead.
DOVECOT_MAIN = "etc/dovecot/dovecot.conf"
PASSWD = "etc/dovecot/hostfleet/passwd"
# IMAP logins need TLS (STARTTLS on 143, or 993): a self-signed certificate made on the node.
TLS_CERT = "etc/dovecot/hostfleet/tls.crt"
TLS_KEY = "etc/dovecot/hostfleet/tls.key"
TLS_DAYS = 3650
MAIL_DIR = "var/mail/hostfleet"
SENDER_LISTS = {"whitelist": "mail_whitelist", "blacklist": "mail_blacklist"}
DOMAIN_FIELDS = ("name", "owner", "mail_nodes")
# The cluster's mail nodes a hosted domain's MX may point at (besides this node) for its mail to stay here.
MAX_MAIL_NODES = 64
MAILBOX_FIELDS = ("address", "password", "quota_mb", "forward")
MAX_FORWARDS = 20
SENDER_FIELDS = ("id", "sender")
MAX_QUOTA_MB = 10_000_000
# glibc's default is 5000; more rounds cost every login, this is a middle ground.
CRYPT_ROUNDS = 20_000


def sha512_crypt(password: str, salt: str | None = None, rounds: int | None = None) -> str:
    """A `$6$` SHA-512 crypt hash at CRYPT_ROUNDS, as dovecot's SHA512-CRYPT verifies."""
    return shacrypt.sha512_crypt(password, salt, CRYPT_ROUNDS if rounds is None else rounds)
def validate_domain(data: object, users: set[str]) -> dict:
    """A mail domain: its name, owner (who must have an account here) and, as the master sends them,
    the addresses of the cluster's mail nodes."""
    data = v.object_fields(data, "body", DOMAIN_FIELDS)
    owner = v.username(data.get("owner"), "owner")
    if owner not in users:
        raise v.ValidationError("owner", f"no account {owner!r} on this node")
    domain = {"name": v.domain_name(data.get("name"), "name"), "owner": owner}
    if data.get("mail_nodes") is not None:
        domain["mail_nodes"] = validate_mail_nodes(data["mail_nodes"])
    return domain


def validate_mail_nodes(value: object) -> list[str]:
    """IP addresses, each once, IPv4-mapped IPv6 written as IPv4 (as exim's iplsearch compares them)."""
    if not isinstance(value, list) or len(value) > MAX_MAIL_NODES:
        raise v.ValidationError("mail_nodes", f"must be a list of at most {MAX_MAIL_NODES} IP addresses")
    addresses: list[str] = []
    for item in value:
        address = ipaddress.ip_address(v.ip_address(item, "mail_nodes"))
        mapped = getattr(address, "ipv4_mapped", None)
        text = str(mapped or address)
        if text not in addresses:
            addresses.append(text)
    return addresses


def _mail_node_lines(domains: list[dict]) -> bytes:
    """The cluster's mail nodes as exim's iplsearch keys (IPv6 quoted), from every domain's record."""
    addresses = {a for d in domains for a in d.get("mail_nodes") or []}
    return _lines([f'"{a}"' if ":" in a else a for a in addresses])


def validate_mailbox(data: object, domains: list[dict], partial: dict | None = None) -> dict:
    """A mailbox: address in a mail domain held here, a password (hashed now), a quota."""
    data = v.object_fields(data, "body", MAILBOX_FIELDS)
    if partial is None:
        address = v.email_address(data.get("address"), "address")
        domain = address.rpartition("@")[2]
        if not any(d["name"] == domain for d in domains):
            raise v.ValidationError("address", f"{domain} is not a mail domain on this node")
    else:
        address = partial["address"]
    quota = v.integer(data.get("quota_mb", (partial or {}).get("quota_mb", 0)), "quota_mb", 0,
                      MAX_QUOTA_MB)
    forward = validate_forward(data.get("forward", (partial or {}).get("forward", [])), address)
    if "password" in data or partial is None:
        crypt = "{SHA512-CRYPT}" + sha512_crypt(v.password(data.get("password"), "password"))
    else:
        crypt = partial["hash"]
    return {"address": address, "hash": crypt, "quota_mb": quota, "forward": forward}


def validate_forward(value: object, address: str) -> list[str]:
    """Addresses a mailbox forwards a copy to (it keeps its own): a list, or one string, comma separated."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list) or len(value) > MAX_FORWARDS:
        raise v.ValidationError("forward", f"must be a list of at most {MAX_FORWARDS} addresses")
    targets: list[str] = []
    for item in value:
        target = v.email_address(item, "forward")
        if target == address:
            raise v.ValidationError("forward", "a mailbox cannot forward to itself")
        if target not in targets:
            targets.append(target)
    return targets


def validate_sender_row(row: object) -> dict:
    """One white/black list row: an id and a sender address or domain."""
    row = v.object_fields(row, "row", SENDER_FIELDS)
    return {"id": v.integer(row.get("id"), "id", 0, 2**63 - 1),
            "sender": v.sender(row.get("sender"), "sender")}


def _lines(items: list[str]) -> bytes:
    """One item per line, sorted, with a final newline."""
    return "".join(f"{item}\n" for item in sorted(set(items))).encode()


def _sender_lines(rows: list[dict]) -> bytes:
    """Senders as exim address-list items: a bare domain matches every address in it."""
    return _lines([r["sender"] if "@" in r["sender"] else f"*@{r['sender']}" for r in rows])


def _passwd_line(mailbox: dict, suspended: bool) -> str:
    """One dovecot passwd-file line; a suspended owner's mailbox refuses every login (nologin)."""
    extra = []
    if mailbox["quota_mb"]:
        extra.append(f"userdb_quota_rule=*:storage={mailbox['quota_mb']}M")
    if suspended:
        extra += ["nologin=y", "reason=account_suspended"]
    return f"{mailbox['address']}:{mailbox['hash']}::::::{' '.join(extra)}"


@functools.cache
def host_name() -> str:
    """The name the node's mail server gives itself (SMTP banner and HELO, the IMAP certificate): the
    kernel's host name, qualified from /etc/hosts or DNS as exim itself would. Looked up once per agent
    process and written into exim's config as `primary_hostname`: left to exim, every `exim -bV` check
    looked it up again, over DNS for its IPv6 address too, and about one check in 70 waited out the
    resolver's 5 s timeout on a host whose DNS drops some queries (a mail change answered in 5 s, past
    the master's timeout)."""
    name = socket.gethostname()
    if "." not in name:
        try:
            name = socket.getaddrinfo(name, None, socket.AF_INET, flags=socket.AI_CANONNAME)[0][3] or name
        except OSError:
            pass
    return name if _HOST_NAME.fullmatch(name) else "localhost"


_HOST_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")


def tls_pair(config) -> tuple[bytes, bytes]:
    """The node's IMAP certificate and key: the ones on disk, or a new self-signed pair.

    Made with openssl (dovecot-core depends on it), so the agent never loads a crypto library."""
    cert, key = (fsutil.read_or_none(apply.under_root(config, f)) for f in (TLS_CERT, TLS_KEY))
    if cert and key:
        return cert, key
    host = host_name()
    with tempfile.TemporaryDirectory() as work:
        out, private = Path(work) / "cert.pem", Path(work) / "key.pem"
        argv = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-days", str(TLS_DAYS), "-subj", f"/CN={host}", "-addext", f"subjectAltName=DNS:{host}",
                "-keyout", str(private), "-out", str(out)]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=apply.CHECK_TIMEOUT_S)
        except FileNotFoundError:
            raise apply.CheckFailed("dovecot", "openssl is not installed: it makes the IMAP certificate") from None
        except subprocess.TimeoutExpired:
            raise apply.CheckFailed("dovecot", "openssl timed out making the IMAP certificate") from None
        if proc.returncode != 0:
            raise apply.CheckFailed("dovecot", "openssl could not make the IMAP certificate: " + proc.stderr.strip())
        return out.read_bytes(), private.read_bytes()


def render_files(config, domains, mailboxes, whitelist, blacklist, suspended=None) -> dict[Path, bytes]:
    """Every managed mail file for this state (suspended: owners whose mailboxes refuse logins)."""
    suspended = suspension.owners(config) if suspended is None else suspended
    exim_dir = apply.under_root(config, EXIM_DIR)
    passwd = apply.under_root(config, PASSWD)
    owner_of = {d["name"]: d["owner"] for d in domains}
    passwd_lines = [
        _passwd_line(m, owner_of.get(m["address"].rpartition("@")[2]) in suspended) for m in mailboxes
    ]
    forwards = [f"{m['address']}: {', '.join(m['forward'])}" for m in mailboxes if m.get("forward")]
    cert, key = tls_pair(config)
    return {
        exim_dir / "domains": _lines([d["name"] for d in domains]),
        exim_dir / "mail_nodes": _mail_node_lines(domains),
        # Exim routes as its own user: it reads the addresses from here, never the passwd-file.
        exim_dir / "mailboxes": _lines([m["address"] for m in mailboxes]),
        exim_dir / "forwards": _lines(forwards),
        # What exim's maildir transport may hold per mailbox (dovecot's userdb_quota_rule covers IMAP only).
        exim_dir / "quotas": _lines([f"{m['address']}: {m['quota_mb']}M" for m in mailboxes if m["quota_mb"]]),
        exim_dir / "whitelist": _sender_lines(whitelist),
        exim_dir / "blacklist": _sender_lines(blacklist),
        passwd: _lines(passwd_lines),
        apply.under_root(config, EXIM_CONF): apply.render(
            "exim4.conf.j2", dir=exim_dir, mail_dir=apply.under_root(config, MAIL_DIR), host_name=host_name(),
        ),
        apply.under_root(config, TLS_CERT): cert,
        apply.under_root(config, TLS_KEY): key,
        apply.under_root(config, DOVECOT_CONF): apply.render(
            "dovecot.conf.j2", passwd=passwd, base_dir=apply.under_root(config, "run/dovecot"),
            mail_dir=apply.under_root(config, MAIL_DIR), cert=apply.under_root(config, TLS_CERT),
            key=apply.under_root(config, TLS_KEY),
        ),
        apply.under_root(config, DOVECOT_MAIN): apply.render(
            "dovecot-main.conf.j2", conf=apply.under_root(config, DOVECOT_CONF),
        ),
    }


def check(config) -> None:
    """exim -bV on the rendered exim config, doveconf -n on the rendered dovecot config."""
    apply.run_checker("exim", ["exim", "-bV", "-C", str(apply.under_root(config, EXIM_CONF))])
    apply.run_checker("dovecot", ["doveconf", "-n", "-c",
                                  str(apply.under_root(config, DOVECOT_MAIN))])


def apply_state(config, domains, mailboxes, whitelist, blacklist, suspended=None) -> apply.Result:
    """Make the mail files match this state; check both configs; reload what changed."""
    desired = render_files(config, domains, mailboxes, whitelist, blacklist, suspended)
    current = {p: d for p in desired if (d := fsutil.read_or_none(p)) is not None}
    changed = {p for p in desired if desired[p] != current.get(p)}
    dovecot_files = {apply.under_root(config, f) for f in (PASSWD, DOVECOT_CONF, DOVECOT_MAIN, TLS_CERT, TLS_KEY)}
    services = []
    if changed - dovecot_files:
        services.append("exim")
    if changed & dovecot_files:
        services.append("dovecot")
    # The passwd-file holds password hashes: readable by root only (dovecot's auth runs as root).
    modes = {apply.under_root(config, PASSWD): 0o600, apply.under_root(config, TLS_KEY): 0o600}
    result = apply.apply_files(config, desired, current, lambda _w: check(config), services, modes)
    if not apply.dry_run():
        close_exim_dir(config)
    return result


def close_exim_dir(config) -> None:
    """exim's lists name every mailbox on the node, customers' forwarding targets and the sender lists:
    their folder is `root:Debian-exim 0750`, read by exim (its receiving processes run as Debian-exim)
    and no customer."""
    apply.close_folder(config, EXIM_DIR, EXIM_GROUP)


def _state(config) -> dict:
    """Everything the mail files are rendered from, as stored."""
    return {
        "domains": apply.load_records(config, DOMAINS_KIND),
        "mailboxes": apply.load_records(config, MAILBOXES_KIND),
        "whitelist": apply.load_list_rows(config, "mail_whitelist"),
        "blacklist": apply.load_list_rows(config, "mail_blacklist"),
    }


def _commit(config, suspended=None, **changes) -> apply.Result:
    """Apply the stored state with changes, then store the changed kinds."""
    state = {**_state(config), **changes}
    clean = {
        **state,
        "whitelist": [validate_sender_row(r) for r in state["whitelist"]],
        "blacklist": [validate_sender_row(r) for r in state["blacklist"]],
    }
    result = apply_state(config, clean["domains"], clean["mailboxes"], clean["whitelist"],
                         clean["blacklist"], suspended)
    if apply.dry_run():
        return result
    if "domains" in changes:
        apply.save_records(config, DOMAINS_KIND, state["domains"])
    if "mailboxes" in changes:
        apply.save_records(config, MAILBOXES_KIND, state["mailboxes"])
    return result


def apply_suspended(config, suspended: set[str]) -> apply.Result:
    """Render the mail files with this set of suspended owners (their mailboxes refuse logins)."""
    return _commit(config, suspended=suspended)


def apply_senders(config, which: str, rows: list) -> apply.Result:
    """Make the whitelist or blacklist file hold these rows (checked, reloaded); idempotent."""
    apply.validate_rows(rows, validate_sender_row)
    # The drift check calls this too (comparing only): under the lock it never sees a mailbox or
    # domain change half done (files written, record not yet stored) and reports false drift.
    with apply.OP_LOCK:
        return _commit(config, **{which: rows})


def replace_senders(config, which: str, version: int, content_hash: str, rows: list) -> dict:
    """PUT /v1/lists/mail_whitelist|mail_blacklist: full replace, recorded version and hash."""
    return apply.replace_list(
        config, SENDER_LISTS[which], version, content_hash, rows,
        lambda cfg, raw_rows: apply_senders(cfg, which, raw_rows),
    )


def list_domains(config) -> list[dict]:
    """Every mail domain on this node."""
    return apply.load_records(config, DOMAINS_KIND)


def get_domain(config, name: str) -> dict:
    """One mail domain."""
    for domain in list_domains(config):
        if domain["name"] == name:
            return domain
    raise apply.NotFound("mail domain", name)


def create_domain(config, data: object) -> dict:
    """Add a mail domain; 409 if it exists."""
    domain = validate_domain(data, apply.known_users(config))
    with apply.OP_LOCK:
        domains = list_domains(config)
        if any(d["name"] == domain["name"] for d in domains):
            raise apply.Conflict("name", f"mail domain {domain['name']} exists")
        _commit(config, domains=[*domains, domain])
    return domain


def delete_domain(config, name: str) -> None:
    """Remove a mail domain; refused while it still has mailboxes."""
    with apply.OP_LOCK:
        get_domain(config, name)
        held = [m["address"] for m in list_mailboxes(config) if m["address"].endswith("@" + name)]
        if held:
            raise apply.Conflict("name", f"{name} still has mailboxes: {', '.join(held)}")
        _commit(config, domains=[d for d in list_domains(config) if d["name"] != name])
        _remove_mail(config, name)


def purge_owner(config, owner: str) -> tuple[list[str], list[str]]:
    """Remove an owner's mail domains and every mailbox in them in one apply (one check, one reload of
    each service); the addresses and the domain names removed."""
    with apply.OP_LOCK:
        domains = list_domains(config)
        names = [d["name"] for d in domains if d["owner"] == owner]
        owned = set(names)
        mailboxes = list_mailboxes(config)
        gone = [m["address"] for m in mailboxes if m["address"].rpartition("@")[2] in owned]
        if names:
            _commit(config, domains=[d for d in domains if d["name"] not in owned],
                    mailboxes=[m for m in mailboxes if m["address"].rpartition("@")[2] not in owned])
            for name in names:
                _remove_mail(config, name)
    return gone, names


def public(mailbox: dict) -> dict:
    """A mailbox as the API shows it (never the hash)."""
    return {"address": mailbox["address"], "quota_mb": mailbox["quota_mb"],
            "forward": list(mailbox.get("forward", []))}


def list_mailboxes(config) -> list[dict]:
    """Every mailbox on this node (with hashes: callers show public() only)."""
    return apply.load_records(config, MAILBOXES_KIND)


def get_mailbox(config, address: str) -> dict:
    """One mailbox by address."""
    for mailbox in list_mailboxes(config):
        if mailbox["address"] == address:
            return mailbox
    raise apply.NotFound("mailbox", address)


def create_mailbox(config, data: object) -> dict:
    """Add a mailbox in a mail domain held here; the password is stored hashed only."""
    with apply.OP_LOCK:
        mailbox = validate_mailbox(data, list_domains(config))
        mailboxes = list_mailboxes(config)
        if any(m["address"] == mailbox["address"] for m in mailboxes):
            raise apply.Conflict("address", f"mailbox {mailbox['address']} exists")
        _commit(config, mailboxes=[*mailboxes, mailbox])
    return public(mailbox)


def update_mailbox(config, address: str, data: object) -> dict:
    """Change a mailbox's password, quota or forwarding."""
    with apply.OP_LOCK:
        old = get_mailbox(config, address)
        if isinstance(data, dict) and "address" in data and data["address"] != address:
            raise v.ValidationError("address", "cannot change; create a new mailbox")
        body = {k: val for k, val in data.items() if k != "address"} if isinstance(data, dict) \
            else data
        mailbox = validate_mailbox(body, list_domains(config), partial=old)
        _commit(config, mailboxes=[mailbox if m["address"] == address else m
                                   for m in list_mailboxes(config)])
    return public(mailbox)


def delete_mailbox(config, address: str) -> None:
    """Remove a mailbox and its mail: a mailbox made later at the same address starts empty."""
    with apply.OP_LOCK:
        get_mailbox(config, address)
        _commit(config, mailboxes=[m for m in list_mailboxes(config) if m["address"] != address])
        local, _, domain = address.rpartition("@")
        _remove_mail(config, domain, local)


def _remove_mail(config, domain: str, local: str | None = None) -> None:
    """Delete a mailbox's maildir (or, local None, a whole mail domain's folder) once exim and dovecot
    no longer know it. Names were validated when the mailbox was made: no "/" or "..". Removed through
    handles opened without following links (agent/homefs.py): the folders are written by the services
    as user mail, never followed as root. A folder that cannot be removed is logged, not raised: the
    mailbox is already gone from both services."""
    relative = domain if local is None else f"{domain}/{local}"
    try:
        homefs.remove_tree(apply.under_root(config, MAIL_DIR), relative)
    except OSError as exc:
        log.warning("could not remove the mail in %s/%s: %s", MAIL_DIR, relative, exc)
