"""Web domains: one nginx server block per domain in a folder per owner, PHP-FPM pools."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import stat
from pathlib import Path

from agent import fsutil, homefs
from agent import validation as v
from agent.ops import apply, suspension

log = logging.getLogger("hostfleet.agent.web")

KIND = "webdomains"
NGINX_CONF = "etc/nginx/nginx.conf"
INCLUDE = "etc/nginx/conf.d/hostfleet.conf"
# Debian's stock site claims default_server on port 80 (nginx refuses two): the include's own default
# server takes its place, and the file is replaced by this note (its folder, which Debian's nginx.conf
# includes, stays).
DEBIAN_DEFAULT_SITE = "etc/nginx/sites-enabled/default"
DEFAULT_SITE_NOTE = (b"# Disabled by the Hostfleet agent: etc/nginx/conf.d/hostfleet.conf holds the default server\n"
                     b"# (unknown hosts get no answer). Debian's page is still in sites-available/default.\n")
VHOST_DIR = "etc/nginx/hostfleet"
POOL_DIR = "etc/php/8.2/fpm/pool.d"
POOL_PREFIX = "hostfleet-"
LOG_DIR = "var/log/nginx"
PHP_FPM = "php-fpm8.2"
FIELDS = ("name", "aliases", "owner", "php", "docroot", "php_settings")
# The php.ini settings a customer sets per site (docs/agent-ops.md, "PHP settings"): sizes in MB within these
# bounds, seconds, a switch. A site with any of them gets a pool of its own holding them as admin values, so
# no script can raise them with ini_set() and no other site of the owner runs with them.
PHP_SIZES_MB = {"memory_limit": (16, 4096), "upload_max_filesize": (1, 2048), "post_max_size": (1, 2048)}
PHP_SECONDS = {"max_execution_time": (1, 3600)}
PHP_FLAGS = ("display_errors",)
PHP_SETTINGS = (*PHP_SIZES_MB, *PHP_SECONDS, *PHP_FLAGS)
# Debian's php.ini: what a site gets for a size it leaves unset.
PHP_DEFAULT_MB = {"memory_limit": 128, "upload_max_filesize": 2, "post_max_size": 8}
_SIZE = re.compile(r"\s*(\d{1,7})\s*([mg]?)b?\s*", re.IGNORECASE)
# TLS (agent/ops/certs.py): the records of each domain's key and certificate, the private folder holding
# them, and the root-owned folder nginx serves HTTP-01 tokens from.
TLS_KIND = "certificates"
TLS_DIR = "tls"
CHALLENGE_DIR = "var/lib/hostfleet/acme-challenge"


def validate(data: object, users: set[str]) -> dict:
    """A web domain record, normalized; the owner must have an account on this node."""
    data = v.object_fields(data, "body", FIELDS)
    name = v.domain_name(data.get("name"), "name")
    aliases = data.get("aliases", [])
    if not isinstance(aliases, list) or len(aliases) > v.MAX_ALIASES:
        raise v.ValidationError("aliases", f"must be a list of at most {v.MAX_ALIASES} names")
    aliases = sorted({v.domain_name(alias, "aliases") for alias in aliases} - {name})
    owner = v.username(data.get("owner"), "owner")
    if owner not in users:
        raise v.ValidationError("owner", f"no hosting account {owner!r} on this node")
    docroot = v.relative_path(data.get("docroot") or f"www/{name}", "docroot")
    if docroot.split("/")[0] == homefs.TMP_DIR:
        raise v.ValidationError("docroot", f"~/{homefs.TMP_DIR} is the PHP pool's private folder; choose another")
    return {
        "name": name,
        "aliases": aliases,
        "owner": owner,
        "php": v.boolean(data.get("php", False), "php"),
        "docroot": docroot,
        "php_settings": php_settings(data.get("php_settings") or {}),
    }


def php_size_mb(value: object, field: str, low: int, high: int) -> int:
    """A php.ini size as whole megabytes: 256, "256M", "1G" (case and a trailing B ignored)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise v.ValidationError(field, "must be a size such as 256M or 1G")
    if isinstance(value, int):
        mb = value
    else:
        match = _SIZE.fullmatch(value)
        if not match:
            raise v.ValidationError(field, f"must be a size such as 256M or 1G, not {value[:40]!r}")
        mb = int(match[1]) * (1024 if match[2].lower() == "g" else 1)
    if not low <= mb <= high:
        raise v.ValidationError(field, f"must be from {low}M to {high}M" if high < 1024
                                else f"must be from {low}M to {high // 1024}G")
    return mb


def php_settings(value: object) -> dict:
    """A site's own php.ini settings, normalized (sizes "<n>M", seconds, "on"/"off"); only those given."""
    value = v.object_fields(value, "php_settings", PHP_SETTINGS)
    settings: dict[str, object] = {}
    for key, (low, high) in PHP_SIZES_MB.items():
        if value.get(key) not in (None, ""):
            settings[key] = php_size_mb(value[key], f"php_settings.{key}", low, high)
    for key, (low, high) in PHP_SECONDS.items():
        if value.get(key) not in (None, ""):
            settings[key] = v.integer(value[key], f"php_settings.{key}", low, high)
    for key in PHP_FLAGS:
        if value.get(key) in ("on", "off"):  # as kept
            settings[key] = value[key]
        elif value.get(key) is not None:
            settings[key] = "on" if v.boolean(value[key], f"php_settings.{key}") else "off"
    upload = settings.get("upload_max_filesize", PHP_DEFAULT_MB["upload_max_filesize"])
    post = settings.get("post_max_size", PHP_DEFAULT_MB["post_max_size"])
    if upload > post:
        field = "upload_max_filesize" if "post_max_size" not in settings else "post_max_size"
        raise v.ValidationError(f"php_settings.{field}", f"post_max_size ({post}M) must be at least "
                                f"upload_max_filesize ({upload}M): a form carrying the file would be refused; "
                                "raise post_max_size too")
    return {k: f"{val}M" if k in PHP_SIZES_MB else val for k, val in settings.items()}


def pool_name(owner: str, site: str | None = None) -> str:
    """The PHP-FPM pool of an owner, or of one of their sites that has its own settings (`<owner>.<digest of
    the site>`: a dot is in no account name, and the digest keeps the socket's path short)."""
    if site is None:
        return owner
    return f"{owner}.{hashlib.sha256(site.encode()).hexdigest()[:10]}"


def _check_unique_names(domains: list[dict]) -> None:
    """Refuse a name or alias served by two domains (nginx would pick one silently)."""
    seen: dict[str, str] = {}
    for domain in domains:
        for index, host in enumerate([domain["name"], *domain["aliases"]]):
            if host in seen and seen[host] != domain["name"]:
                field = "name" if index == 0 else "aliases"
                raise apply.Conflict(field, f"{host} is already served by {seen[host]}")
            seen[host] = domain["name"]


# A site's files are named after it, with a suffix (".conf", ".access.log"): a name that would pass a file
# name's 255 bytes is cut and given a digest of the whole, which no domain name can be (it has a "~").
STEM_MAX = 240
KEY_STEM_MAX = 255 - len(".0123456789abcdef.key")
# nginx stores each server name in a hash bucket of this size; its default (a cache line, 64 bytes) refuses
# names longer than about 50 characters, and a 253-character one needs 512.
SERVER_NAMES_BUCKET = 512
SERVER_NAMES_MAX = 16384
_HASH_SETTING = re.compile(r"^\s*(server_names_hash_bucket_size|server_names_hash_max_size)\s", re.MULTILINE)


def file_stem(name: str, longest: int = STEM_MAX) -> str:
    """The part of a site's file names that names it: the domain, or for a long one its first characters and
    a digest of the whole (at most `longest` characters)."""
    if len(name) <= longest:
        return name
    return f"{name[:longest - 17]}~{hashlib.sha256(name.encode()).hexdigest()[:16]}"


def key_path(config, name: str, key_id: str) -> Path:
    """Where one of a domain's private keys is kept: `<stem>.<key id>.key`, the stem cut so the whole
    fits a file name's 255 bytes (the suffix is 21 characters, longer than the others')."""
    return tls_dir(config) / f"{file_stem(name, KEY_STEM_MAX)}.{key_id}.key"


def hash_settings(config) -> dict[str, int]:
    """The server-name hash sizes the include sets: those nginx.conf does not set itself (nginx refuses a
    directive given twice in one block)."""
    main = fsutil.read_or_none(apply.under_root(config, NGINX_CONF)) or b""
    taken = set(_HASH_SETTING.findall(main.decode("utf-8", "replace")))
    wanted = {"server_names_hash_bucket_size": SERVER_NAMES_BUCKET, "server_names_hash_max_size": SERVER_NAMES_MAX}
    return {k: size for k, size in wanted.items() if k not in taken}


def php_socket(config, pool: str) -> Path:
    """The PHP-FPM socket of a pool (pool_name: an owner's, or one site's)."""
    return apply.under_root(config, f"run/php/{POOL_PREFIX}{pool}.sock")


def tls_dir(config) -> Path:
    """The agent's private folder of TLS keys (0600) and certificates."""
    return Path(config.state_dir) / TLS_DIR


def cert_path(config, name: str) -> Path:
    """Where a domain's certificate chain (leaf first) is kept."""
    return tls_dir(config) / f"{file_stem(name)}.crt"


def tls_entry(config, record: dict) -> dict:
    """What a vhost needs of a domain's TLS record: its files and switches. Redirect and HSTS wait for
    a certificate a browser accepts (a self-signed one would lock visitors out)."""
    trusted = not record.get("self_signed", True)
    return {
        "cert": cert_path(config, record["name"]),
        "key": key_path(config, record["name"], record["key_id"]),
        "redirect": trusted and bool(record.get("redirect")),
        "hsts": trusted and bool(record.get("hsts")),
    }


def tls_settings(config) -> dict[str, dict]:
    """Each domain with a certificate installed: its vhost's TLS settings."""
    return {r["name"]: tls_entry(config, r) for r in apply.load_records(config, TLS_KIND) if r.get("key_id")}


def forget_tls(config, names: list[str]) -> None:
    """Remove the keys, certificates and records of domains no longer served here."""
    records = apply.load_records(config, TLS_KIND)
    gone = [r for r in records if r["name"] in names]
    if not gone:
        return
    for record in gone:
        for key_id in {record.get("key_id"), record.get("pending")} - {None}:
            fsutil.remove(key_path(config, record["name"], key_id))
        fsutil.remove(cert_path(config, record["name"]))
    apply.save_records(config, TLS_KIND, [r for r in records if r["name"] not in names])


def render_files(config, domains: list[dict], suspended: set[str] | None = None,
                 dropped: frozenset[str] = frozenset(), tls: dict[str, dict] | None = None) -> dict[Path, bytes]:
    """Every managed file for this set of domains: vhosts, the include, the owners' pools.

    A suspended owner's domains answer 503 "suspended" and their PHP pool is gone. An owner's pool is
    made when one of their sites first has PHP and then kept (ondemand: idle, it runs no process) while
    the account is on the node, unsuspended and not in dropped: every change to the set of pools
    reloads the one php-fpm every customer's PHP runs under, so what a customer does to their sites
    (PHP off and on, deleting and making their only site) must not change that set.
    """
    suspended = suspension.owners(config) if suspended is None else suspended
    tls = tls_settings(config) if tls is None else tls
    served = {d["name"] for d in domains}
    root = Path(config.root)
    log_dir = apply.under_root(config, LOG_DIR)
    vhost_dir = apply.under_root(config, VHOST_DIR)
    files = {
        apply.under_root(config, INCLUDE): apply.render("nginx-include.conf.j2", vhost_dir=vhost_dir,
                                                        hash_settings=hash_settings(config),
                                                        tls_default=bool(served & set(tls)))
    }
    php_owners = set()
    site_pools: dict[str, tuple[str, dict]] = {}
    for domain in domains:
        owner = domain["owner"]
        settings = domain.get("php_settings") or {}
        pool = pool_name(owner, domain["name"] if settings else None)
        files[vhost_dir / owner / f"{file_stem(domain['name'])}.conf"] = apply.render(
            "vhost.conf.j2",
            name=domain["name"],
            stem=file_stem(domain["name"]),
            names=[domain["name"], *domain["aliases"]],
            owner=owner,
            docroot=root / "home" / owner / domain["docroot"],
            log_dir=log_dir,
            php=domain["php"],
            php_socket=php_socket(config, pool),
            suspended=owner in suspended,
            challenge_dir=apply.under_root(config, CHALLENGE_DIR),
            tls=tls.get(domain["name"]),
        )
        if domain["php"] and owner not in suspended:
            if settings:
                site_pools[pool] = (owner, settings)
            else:
                php_owners.add(owner)
    php_owners |= kept_pools(config)
    pools = {owner: (owner, {}) for owner in php_owners}
    pools.update(site_pools)
    for pool, (owner, settings) in sorted(pools.items()):
        if owner in suspended or owner in dropped:
            continue
        files[apply.under_root(config, f"{POOL_DIR}/{POOL_PREFIX}{pool}.conf")] = apply.render(
            "php-pool.conf.j2", pool=pool, owner=owner, socket=php_socket(config, pool), home=root / "home" / owner,
            tmp=root / "home" / owner / homefs.TMP_DIR, settings=settings,
        )
    return files


def pool_owners(config, files: dict[Path, bytes]) -> list[str]:
    """The owners one of whose PHP pools (their own or a site's) is among these files."""
    pools = apply.under_root(config, POOL_DIR)
    return sorted({p.name[len(POOL_PREFIX):-len(".conf")].split(".")[0] for p in files
                   if p.parent == pools and p.name.startswith(POOL_PREFIX)})


def kept_pools(config) -> set[str]:
    """The owners whose own pool exists and who are still hosting accounts here (a site's pool lives only as
    long as the site has settings of its own)."""
    pools = apply.under_root(config, POOL_DIR)
    owners = set()
    for path in pools.glob(f"{POOL_PREFIX}*.conf") if pools.is_dir() else ():
        owner = path.name[len(POOL_PREFIX):-len(".conf")]
        if "." in owner:
            continue
        try:
            owners.add(homefs.account(config, v.username(owner, "owner")).name)
        except v.ValidationError:
            continue
    return owners


def current_files(config) -> dict[Path, bytes]:
    """The managed files as they are now."""
    files = fsutil.read_tree(apply.under_root(config, VHOST_DIR), ".conf")
    pools = apply.under_root(config, POOL_DIR)
    if pools.is_dir():
        for path in pools.glob(f"{POOL_PREFIX}*.conf"):
            files[path] = path.read_bytes()
    include = apply.under_root(config, INCLUDE)
    if include.exists():
        files[include] = include.read_bytes()
    stock = apply.under_root(config, DEBIAN_DEFAULT_SITE)
    if os.path.lexists(stock):
        files[stock] = fsutil.read_or_none(stock) or b""
    return files


def nginx_test(config) -> None:
    """`nginx -t` on the whole tree under the root prefix; its message on failure."""
    conf = apply.under_root(config, NGINX_CONF)
    apply.run_checker(
        "nginx",
        ["nginx", "-t", "-q", "-e", "stderr", "-p", str(apply.under_root(config, "var/lib/nginx")),
         "-c", str(conf)],
    )


def php_test(config) -> None:
    """`php-fpm8.2 -t` on a real node (a private root's pools name users the host lacks)."""
    if Path(config.root).resolve() == Path("/") and shutil.which(PHP_FPM):
        apply.run_checker("php-fpm", [PHP_FPM, "-t"])


def check(config, pools_changed: bool) -> None:
    """nginx -t always; php-fpm -t when a pool changed."""
    if pools_changed:
        php_test(config)
    nginx_test(config)


def apply_domains(config, domains: list[dict], suspended: set[str] | None = None,
                  dropped: frozenset[str] = frozenset(), tls: dict[str, dict] | None = None,
                  extra: dict[Path, bytes] | None = None) -> apply.Result:
    """Make the vhost tree hold exactly these (validated) domains, without the pools of dropped owners;
    check, write, reload. `tls` replaces the stored TLS settings and `extra` files (a certificate) are
    written, checked and rolled back with the vhosts."""
    _check_unique_names(domains)
    desired = render_files(config, domains, suspended, dropped, tls)
    desired.update(extra or {})
    current = current_files(config)
    conf = apply.under_root(config, NGINX_CONF)
    if not conf.exists():
        desired[conf] = apply.render("nginx.conf.j2", root=Path(config.root))
    stock = apply.under_root(config, DEBIAN_DEFAULT_SITE)
    if os.path.lexists(stock):
        desired[stock] = DEFAULT_SITE_NOTE
    for folder in ("var/log/nginx", "var/lib/nginx", "run"):
        apply.under_root(config, folder).mkdir(parents=True, exist_ok=True)
    if not apply.dry_run():
        private_logs(config, domains)
    pools_changed = any(
        POOL_PREFIX in p.name and desired.get(p) != current.get(p) for p in {*desired, *current}
    )
    services = ["php-fpm", "nginx"] if pools_changed else ["nginx"]
    result = apply.apply_files(config, desired, current, lambda _w: check(config, pools_changed), services)
    if not apply.dry_run():
        for owner in pool_owners(config, desired):
            ensure_pool_tmp(config, owner)
    return result


LOG_MODE = 0o640
# Debian's group for reading logs (logrotate's `create 0640 www-data adm` gives rotated ones the same).
LOG_GROUP = "adm"


def private_logs(config, domains: list[dict]) -> None:
    """Each site's access and error log, made `root:adm 0640` before nginx opens it: nginx creates a missing
    log as root with mode 0644 in Debian's /var/log/nginx (0755), where every customer's shell would read
    another's visitors, URLs and PHP errors. A log readable by others already is closed the same way. The
    folder is root's (no customer writes there), and the files are opened without following links."""
    log_dir = apply.under_root(config, LOG_DIR)
    gid = apply.group_id(config, LOG_GROUP) or 0
    as_root = os.geteuid() == 0
    for domain in domains:
        for kind in ("access", "error"):
            try:
                fd = os.open(log_dir / f"{file_stem(domain['name'])}.{kind}.log",
                             os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK,
                             LOG_MODE)
            except OSError as exc:
                log.warning("could not make %s's %s log private: %s", domain["name"], kind, exc)
                continue
            try:
                st = os.fstat(fd)
                if as_root and st.st_uid == 0 and st.st_gid == 0:
                    os.fchown(fd, 0, gid)
                if stat.S_IMODE(st.st_mode) & 0o007:
                    os.fchmod(fd, stat.S_IMODE(st.st_mode) & ~0o007)
            finally:
                os.close(fd)


def ensure_pool_tmp(config, owner: str) -> None:
    """The private temporary folder of an owner's pool (uploads, sessions), made when missing. The pool
    is live already: a home where it cannot be made (a link in its place) is logged, not raised; PHP,
    running as the owner, then has no temporary folder, and nothing else is affected."""
    try:
        if homefs.ensure_private_dir(config, owner):
            log.info("made %s's private PHP folder ~/%s", owner, homefs.TMP_DIR)
    except (v.ValidationError, OSError) as exc:
        log.warning("no private PHP folder for %s: %s", owner, exc)


def apply_suspended(config, suspended: set[str]) -> apply.Result:
    """Render the node's domains with this set of suspended owners."""
    return apply_domains(config, list_domains(config), suspended)


def check_docroot(config, domain: dict) -> None:
    """Refuse (400, docroot) a document root whose existing components include a link, something not a
    folder, or a folder not the owner's; nothing is made."""
    acct = homefs.account(config, domain["owner"])
    if not os.path.lexists(apply.under_root(config, f"home/{acct.name}")):
        return  # made with the document root
    with homefs.Home(config, acct, "docroot") as home:
        home.check(domain["docroot"])


def ensure_docroot(config, domain: dict) -> list[str]:
    """A domain's document root, owned by its owner, with a default index page; kept if it exists.

    Made from an open handle of the home without following links (agent/homefs.py): folders
    `<owner>:www-data 2750`, the page `<owner>:www-data 0640`, the home `<owner>:www-data 0710` when
    the agent makes it (nginx, in group www-data, enters it and reads the site; no other account can).
    Returns the folders made. ValidationError (docroot) when a component is or became a link.
    """
    acct = homefs.account(config, domain["owner"])
    with homefs.Home(config, acct, "docroot", create=True) as home:
        fd, made = home.walk(domain["docroot"], homefs.SITE_DIR_MODE, acct.web_gid)
        try:
            if made:
                page = apply.render("index.html.j2", name=domain["name"])
                home.create_file(fd, "index.html", page, homefs.SITE_FILE_MODE, acct.web_gid)
        finally:
            os.close(fd)
    return made


def replace_all(config, rows: list) -> apply.Result:
    """Full replace of the node's web domains (the bench and a resync use it); a domain left out goes
    with its TLS keys and certificate, as a delete takes them."""
    if not isinstance(rows, list):
        raise v.ValidationError("rows", "must be a list")
    users = apply.hosting_users(config)
    domains = apply.validate_rows(rows, lambda row: validate(row, users))
    with apply.OP_LOCK:
        kept = {d["name"] for d in domains}
        dropped = [r["name"] for r in apply.load_records(config, TLS_KIND) if r["name"] not in kept]
        result = apply_domains(config, domains)
        apply.save_records(config, KIND, domains)
        forget_tls(config, dropped)
    return result


def list_domains(config) -> list[dict]:
    """Every web domain on this node (one kept before sites had PHP settings has none)."""
    return [{"php_settings": {}, **record} for record in apply.load_records(config, KIND)]


def get(config, name: str) -> dict:
    """One web domain by name."""
    return {"php_settings": {}, **apply.find_record(config, KIND, name, "web domain")}


def create(config, data: object) -> dict:
    """Add a web domain and make its document root; 409 if the name is taken, 400 (docroot) if the path
    to the document root passes through a link (nothing is changed)."""
    domain = validate(data, apply.hosting_users(config))
    with apply.OP_LOCK:
        domains = list_domains(config)
        if any(d["name"] == domain["name"] for d in domains):
            raise apply.Conflict("name", f"web domain {domain['name']} exists")
        _commit_with_docroot(config, domain, domains, [*domains, domain])
    return domain


def _commit_with_docroot(config, domain: dict, before: list[dict], after: list[dict]) -> None:
    """Commit `after` and make the domain's document root; a root that became a link in between (a
    race) puts `before` back and refuses."""
    check_docroot(config, domain)
    _commit(config, after)
    try:
        ensure_docroot(config, domain)
    except (v.ValidationError, OSError):
        _commit(config, before)
        raise


def update(config, name: str, data: object) -> dict:
    """Change a web domain's aliases, PHP switch and settings (the whole set) or document root (not its name
    or owner)."""
    if not isinstance(data, dict):
        raise v.ValidationError("body", "must be a JSON object")
    with apply.OP_LOCK:
        old = get(config, name)
        if "owner" in data and data["owner"] != old["owner"]:
            raise v.ValidationError("owner", "cannot change; delete and create the domain")
        domain = validate({**old, **data, "name": old["name"]}, apply.hosting_users(config))
        domains = list_domains(config)
        after = [domain if d["name"] == name else d for d in domains]
        if domain["docroot"] != old["docroot"]:
            _commit_with_docroot(config, domain, domains, after)
        else:
            _commit(config, after)
    return domain


def delete(config, name: str) -> None:
    """Remove a web domain's server block (the document root is left to the owner)."""
    with apply.OP_LOCK:
        get(config, name)
        _commit(config, [d for d in list_domains(config) if d["name"] != name])
        forget_tls(config, [name])


def purge_owner(config, owner: str) -> list[str]:
    """Remove every web domain of an owner, and their pool, in one apply (one nginx check and reload); the
    names removed."""
    with apply.OP_LOCK:
        domains = list_domains(config)
        kept = [d for d in domains if d["owner"] != owner]
        if len(kept) != len(domains) or owner in kept_pools(config):
            apply_domains(config, kept, dropped=frozenset({owner}))
            apply.save_records(config, KIND, kept)
            forget_tls(config, [d["name"] for d in domains if d["owner"] == owner])
    return [d["name"] for d in domains if d["owner"] == owner]


def _commit(config, domains: list[dict]) -> None:
    """Apply then store the new set (stored only once nginx took it)."""
    apply_domains(config, domains)
    apply.save_records(config, KIND, domains)
