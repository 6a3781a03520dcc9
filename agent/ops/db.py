"""Customers' MariaDB databases and database users on a node with the `db` role (docs/agent-ops.md, "Databases").

The agent talks to MariaDB as root over the local socket (unix_socket authentication) with the `mariadb`
client, the statements on its standard input, never on a command line. A password reaches MariaDB only as
what it stores: the agent computes the `mysql_native_password` hash and sends `IDENTIFIED BY PASSWORD
'*<hex>'`, so the clear text is in no statement, log or process list. Every name is validated first
(agent/validation.py `db_object_name`: `<owner>_` and `[a-z0-9_]`), and quoted as well; a grant names its
database with `_` and `%` escaped, so the grant's pattern matches that one database and no other.

What belongs to whom is the agent's record (`<state_dir>/data/databases.json`, `dbusers.json`): a database
or user not in it (the engine's own schemas and accounts, anything made by hand) is never dropped, granted
or changed, and a user is granted only databases of its own owner.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import re
import subprocess

from agent import fsutil
from agent import validation as v
from agent.ops import apply

ENGINE = "mariadb"
DATABASES = "databases"
DBUSERS = "dbusers"
# The client as root over the local socket; tests on the host point it into a lab node.
CLIENT = ["mariadb"]
CLIENT_OPTIONS = ["--batch", "--skip-column-names", "--raw", "--default-character-set=utf8mb4"]
SQL_TIMEOUT_S = 60
CHARSETS: dict[str, tuple[str, ...]] = {
    "utf8mb4": ("utf8mb4_unicode_ci", "utf8mb4_general_ci", "utf8mb4_unicode_520_ci", "utf8mb4_bin"),
    "utf8mb3": ("utf8mb3_general_ci", "utf8mb3_unicode_ci", "utf8mb3_bin"),
    "latin1": ("latin1_swedish_ci", "latin1_general_ci", "latin1_bin"),
}
DEFAULT_CHARSET = "utf8mb4"
MAX_HOSTS = 64
# Connections one database user may hold per host: one customer's script cannot take all of the server's
# max_connections (151 by default) and lock the other customers' sites out.
MAX_USER_CONNECTIONS = 20
DATABASE_FIELDS = ("name", "owner", "engine", "charset", "collation")
USER_FIELDS = ("name", "owner", "engine", "password", "hosts", "databases")
SERVER_CNF = "etc/mysql/mariadb.conf.d/60-hostfleet.cnf"
SERVER_FIREWALL = "etc/hostfleet/db-firewall.nft"
PORT = 3306
# The account a SHOW GRANTS line is for (names and hosts here never hold a quote or backquote).
_GRANTEE = re.compile(r" TO [`'](?P<user>[^`']*)[`']@[`'](?P<host>[^`']*)[`']")


class EngineError(apply.OpError):
    """MariaDB refused a statement or could not be reached; its own message."""

    status = 502


# --- SQL building: only validated names reach these, and they quote anyway -------------------------------

def quote_ident(name: str) -> str:
    """A name as a backquoted identifier."""
    return "`" + name.replace("`", "``") + "`"


def quote_string(value: str) -> str:
    """A string literal (backslash escapes are on in MariaDB's default sql_mode, so both are doubled)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def grant_pattern(database: str) -> str:
    """The database part of GRANT/REVOKE: `_` and `%` are wildcards there, so each is escaped and the
    grant is on this one database (`alice_db` would also match `alicexdb`)."""
    escaped = database.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")
    return quote_ident(escaped)


def account(user: str, host: str) -> str:
    """'user'@'host'."""
    return f"{quote_string(user)}@{quote_string(host)}"


def native_hash(password: str) -> str:
    """The `mysql_native_password` hash MariaDB stores: `*` and the upper-case hex SHA1(SHA1(password))."""
    return "*" + hashlib.sha1(hashlib.sha1(password.encode("utf-8")).digest()).hexdigest().upper()


def create_database_sql(name: str, charset: str, collation: str) -> str:
    return f"CREATE DATABASE {quote_ident(name)} CHARACTER SET {charset} COLLATE {collation};"


def create_user_sql(name: str, hosts: list[str], password_hash: str) -> str:
    return "".join(f"CREATE USER {account(name, host)} IDENTIFIED BY PASSWORD {quote_string(password_hash)} "
                   f"WITH MAX_USER_CONNECTIONS {MAX_USER_CONNECTIONS};\n" for host in hosts)


def grant_sql(name: str, hosts: list[str], database: str) -> str:
    return "".join(f"GRANT ALL PRIVILEGES ON {grant_pattern(database)}.* TO {account(name, host)};\n"
                   for host in hosts)


def revoke_sql(name: str, hosts: list[str], database: str) -> str:
    return "".join(f"REVOKE ALL PRIVILEGES ON {grant_pattern(database)}.* FROM {account(name, host)};\n"
                   for host in hosts)


def password_sql(name: str, hosts: list[str], password_hash: str) -> str:
    return "".join(f"ALTER USER {account(name, host)} IDENTIFIED BY PASSWORD {quote_string(password_hash)};\n"
                   for host in hosts)


def drop_user_sql(name: str, hosts: list[str]) -> str:
    return "".join(f"DROP USER IF EXISTS {account(name, host)};\n" for host in hosts)


def end_sessions_sql(name: str) -> str:
    """End every open connection of the user: MariaDB lets a session go on with the rights it opened with
    after DROP USER, a new password or a REVOKE on its current database."""
    return f"KILL HARD CONNECTION USER {quote_string(name)};\n"


# --- validation -------------------------------------------------------------------------------------------

def validate_owner(value: object, field: str = "owner") -> str:
    return v.username(value, field)


def validate_charset(body: dict) -> tuple[str, str]:
    """charset and collation from the allow-list; the collation defaults to the charset's first."""
    charset = v.choice(body.get("charset", DEFAULT_CHARSET), "charset", CHARSETS)
    collation = body.get("collation") or CHARSETS[charset][0]
    collation = v.choice(collation, "collation", CHARSETS[charset])
    return charset, collation


def validate_hosts(value: object, field: str = "hosts") -> list[str]:
    """The addresses a user may connect from besides localhost (the cluster's web nodes), sorted."""
    if value is None:
        value = []
    if not isinstance(value, list):
        raise v.ValidationError(field, "must be a list of IP addresses")
    if len(value) > MAX_HOSTS:
        raise v.ValidationError(field, f"more than {MAX_HOSTS} addresses")
    hosts = {host_address(item, f"{field}[{i}]") for i, item in enumerate(value)}
    return ["localhost", *sorted(hosts, key=lambda h: (ipaddress.ip_address(h).version, ipaddress.ip_address(h)))]


def host_address(value: object, field: str) -> str:
    """One address an account is for. An IPv6 scope (`fe80::1%eth0`) is refused: `%` in an account's host
    is MariaDB's wildcard, so the account would match more than that address."""
    address = v.ip_address(value, field)
    if "%" in address:
        raise v.ValidationError(field, f"{address} has a scope (%): give the address without it")
    return address


def validate_engine(body: dict) -> str:
    return v.choice(body.get("engine", ENGINE), "engine", (ENGINE,))


# --- the engine -------------------------------------------------------------------------------------------

def run_sql(sql: str) -> list[list[str]]:
    """Run statements as root over the local socket (on stdin); the rows of every result, tab-split."""
    try:
        proc = subprocess.run([*CLIENT, *CLIENT_OPTIONS], input=sql, capture_output=True, text=True,
                              timeout=SQL_TIMEOUT_S)
    except FileNotFoundError:
        raise EngineError(ENGINE, "MariaDB is not installed on this node (no mariadb client)") from None
    except subprocess.TimeoutExpired:
        raise EngineError(ENGINE, f"MariaDB did not answer within {SQL_TIMEOUT_S} s") from None
    if proc.returncode != 0:
        message = proc.stderr.strip() or f"mariadb exited with {proc.returncode}"
        if "ERROR 2002" in message:
            message = f"MariaDB is not running on this node: {message}"
        raise EngineError(ENGINE, message)
    return [line.split("\t") for line in proc.stdout.splitlines()]


def engine_databases() -> set[str]:
    return {row[0] for row in run_sql("SHOW DATABASES;")}


def engine_accounts(name: str | None = None) -> set[tuple[str, str]]:
    where = f" WHERE User = {quote_string(name)}" if name is not None else ""
    return {(row[0], row[1]) for row in run_sql(f"SELECT User, Host FROM mysql.user{where};")}


def granted_accounts(database: str) -> set[tuple[str, str]]:
    """The accounts holding a grant on exactly this database (mysql.db stores the escaped pattern). A grant
    taken back by hand is not revoked again: MariaDB would refuse the whole statement list (error 1141)."""
    pattern = grant_pattern(database)[1:-1].replace("``", "`")
    rows = run_sql(f"SELECT User, Host FROM mysql.db WHERE Db = {quote_string(pattern)};")
    return {(row[0], row[1]) for row in rows}


def database_sizes() -> dict[str, int]:
    """Bytes of data and indexes per schema, from information_schema (one query for the whole node)."""
    rows = run_sql("SELECT table_schema, COALESCE(SUM(data_length + index_length), 0) "
                   "FROM information_schema.tables GROUP BY table_schema;")
    return {row[0]: int(row[1]) for row in rows}


# --- records ----------------------------------------------------------------------------------------------

def list_databases(config, with_size: bool = True) -> list[dict]:
    """The databases held here, each with its size in bytes (from information_schema)."""
    records = apply.load_records(config, DATABASES)
    if not with_size or not records:
        return records
    sizes = database_sizes()
    return [{**record, "size": sizes.get(record["name"], 0)} for record in records]


def public_user(record: dict) -> dict:
    return {key: record[key] for key in ("name", "owner", "engine", "hosts", "databases")}


def list_users(config, with_grants: bool = True) -> list[dict]:
    """The database users held here; with each the grants MariaDB holds for it, per host (one client run
    for all of them)."""
    users = [public_user(r) for r in apply.load_records(config, DBUSERS)]
    if not with_grants or not users:
        return users
    grants = grants_of([(user["name"], host) for user in users for host in user["hosts"]])
    return [{**user, "grants": {host: grants.get((user["name"], host), []) for host in user["hosts"]}}
            for user in users]


def grants_of(accounts: list[tuple[str, str]]) -> dict[tuple[str, str], list[str]]:
    """SHOW GRANTS for each (user, host) account, the password hash in them left out."""
    sql = "".join(f"SHOW GRANTS FOR {account(name, host)};\n" for name, host in accounts)
    grants: dict[tuple[str, str], list[str]] = {key: [] for key in accounts}
    for row in run_sql(sql):
        line = row[0]
        match = _GRANTEE.search(line)
        if match and (key := (match["user"], match["host"])) in grants:
            grants[key].append(line.split(" IDENTIFIED BY ")[0])
    return grants


def get_database(config, name: str, owner: str | None = None) -> dict:
    record = apply.find_record(config, DATABASES, name, "database")
    _check_owner(record, owner, "database")
    return record


def get_database_or_none(config, name: str, owner: str) -> dict | None:
    return next((r for r in apply.load_records(config, DATABASES) if r["name"] == name and r["owner"] == owner),
                None)


def get_user(config, name: str, owner: str | None = None) -> dict:
    record = apply.find_record(config, DBUSERS, name, "database user")
    _check_owner(record, owner, "database user")
    return public_user(record)


def _check_owner(record: dict, owner: str | None, what: str) -> None:
    """A request that names an owner touches only that owner's objects (404: another's is not shown)."""
    if owner is not None and record["owner"] != owner:
        raise apply.NotFound(what, record["name"])


def _check_prefix_owner(config, owner: str, name: str) -> None:
    """Logins may hold `_`, so `alice_bob_shop` fits both alice's prefix and alice_bob's: a name belongs to
    the owner known here (an account on the node, or the owner of a database or user held) with the
    longest prefix it carries, and another owner may not take it (409 naming `name`)."""
    known = apply.hosting_users(config) | {r["owner"] for kind in (DATABASES, DBUSERS)
                                           for r in apply.load_records(config, kind)}
    claimant = max((o for o in known | {owner} if name.startswith(f"{o}_")), key=len)
    if claimant != owner:
        raise apply.Conflict("name", f"{name} is in {claimant}'s names ({claimant}_...); choose another name")


# --- databases --------------------------------------------------------------------------------------------

def create_database(config, body: dict) -> dict:
    """CREATE DATABASE `<owner>_<name>` with a charset and collation from the allow-list."""
    body = v.object_fields(body, "body", DATABASE_FIELDS)
    owner = validate_owner(body.get("owner"))
    engine = validate_engine(body)
    name = v.db_object_name(body.get("name"), owner, "name", engine=engine, kind="database")
    charset, collation = validate_charset(body)
    with apply.OP_LOCK:
        records = apply.load_records(config, DATABASES)
        _check_prefix_owner(config, owner, name)
        if any(r["name"] == name for r in records):
            raise apply.Conflict("name", f"database {name} exists already")
        if name in engine_databases():
            raise apply.Conflict("name", f"a database named {name} exists on this node outside the panel")
        run_sql(create_database_sql(name, charset, collation))
        record = {"name": name, "owner": owner, "engine": engine, "charset": charset, "collation": collation}
        apply.save_records(config, DATABASES, [*records, record])
    return record


def delete_database(config, name: str, owner: str | None = None) -> None:
    """Revoke every grant on the database and end its users' sessions, then drop it (only a database this
    agent made)."""
    with apply.OP_LOCK:
        record = get_database(config, name)
        _check_owner(record, owner, "database")
        users = apply.load_records(config, DBUSERS)
        granted = granted_accounts(name)
        holders = [u for u in users if name in u["databases"]]
        sql = "".join(revoke_sql(u["name"], [h for h in u["hosts"] if (u["name"], h) in granted], name)
                      for u in holders)
        # A session keeps its rights on its current database: it would have them on one made again by this name.
        sql += "".join(end_sessions_sql(u["name"]) for u in holders)
        run_sql(sql + f"DROP DATABASE IF EXISTS {quote_ident(name)};")
        for user in users:
            user["databases"] = [d for d in user["databases"] if d != name]
        apply.save_records(config, DBUSERS, users)
        apply.save_records(config, DATABASES, [r for r in apply.load_records(config, DATABASES) if r["name"] != name])


# --- users ------------------------------------------------------------------------------------------------

def _own_databases(config, owner: str, value: object, field: str = "databases") -> list[str]:
    """Names of databases of this owner held here (a database of another owner is refused naming it)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise v.ValidationError(field, "must be a list of database names")
    held = {r["name"]: r["owner"] for r in apply.load_records(config, DATABASES)}
    names: list[str] = []
    for i, item in enumerate(value):
        name = v.db_object_name(item, owner, f"{field}[{i}]", kind="database")
        if held.get(name) != owner:
            raise v.ValidationError(f"{field}[{i}]", f"{owner} has no database {name} on this node")
        if name not in names:
            names.append(name)
    return names


def create_user(config, body: dict) -> dict:
    """CREATE USER for localhost and each given address, then grants on the owner's databases given."""
    body = v.object_fields(body, "body", USER_FIELDS)
    owner = validate_owner(body.get("owner"))
    engine = validate_engine(body)
    name = v.db_object_name(body.get("name"), owner, "name", engine=engine, kind="user")
    password_hash = native_hash(v.password(body.get("password")))
    hosts = validate_hosts(body.get("hosts"))
    with apply.OP_LOCK:
        databases = _own_databases(config, owner, body.get("databases"))
        records = apply.load_records(config, DBUSERS)
        _check_prefix_owner(config, owner, name)
        if any(r["name"] == name for r in records):
            raise apply.Conflict("name", f"database user {name} exists already")
        if engine_accounts(name):
            raise apply.Conflict("name", f"a database user named {name} exists on this node outside the panel")
        sql = create_user_sql(name, hosts, password_hash)
        sql += "".join(grant_sql(name, hosts, database) for database in databases)
        try:
            run_sql(sql)
        except EngineError:
            _undo_user(name, hosts)
            raise
        record = {"name": name, "owner": owner, "engine": engine, "hosts": hosts, "databases": databases}
        apply.save_records(config, DBUSERS, [*records, record])
    return record


def _undo_user(name: str, hosts: list[str]) -> None:
    """Drop the accounts a failed create made (MariaDB's DDL is not transactional)."""
    try:
        run_sql(drop_user_sql(name, hosts))
    except EngineError:
        pass


def update_user(config, name: str, body: dict, owner: str | None = None) -> dict:
    """Change a user's password, hosts (accounts added with the same hash, removed ones dropped) or the
    set of databases it is granted; each field only when given. A change that takes a right away ends the
    user's open connections. An owner (`?owner=`, or "owner" in the body) scopes the change to that owner's
    user."""
    body = v.object_fields(body, "body", ("password", "hosts", "databases", "owner"))
    with apply.OP_LOCK:
        records = apply.load_records(config, DBUSERS)
        record = next((r for r in records if r["name"] == name), None)
        if record is None:
            raise apply.NotFound("database user", name)
        _check_owner(record, owner, "database user")
        if "owner" in body:
            _check_owner(record, validate_owner(body["owner"]), "database user")
        owner = record["owner"]
        new_hash = native_hash(v.password(body["password"])) if "password" in body else None
        hosts = validate_hosts(body["hosts"]) if "hosts" in body else record["hosts"]
        databases = (_own_databases(config, owner, body["databases"]) if "databases" in body
                     else record["databases"])
        added = [h for h in hosts if h not in record["hosts"]]
        removed = [h for h in record["hosts"] if h not in hosts]
        kept = [h for h in hosts if h in record["hosts"]]
        sql = ""
        if new_hash:
            sql += password_sql(name, kept, new_hash)
        if added:
            sql += create_user_sql(name, added, new_hash or current_hash(name, kept))
            sql += "".join(grant_sql(name, added, d) for d in databases)
        sql += drop_user_sql(name, removed)
        sql += "".join(grant_sql(name, kept, d) for d in databases if d not in record["databases"])
        revoked = [d for d in record["databases"] if d not in databases]
        for database in revoked:
            granted = granted_accounts(database)
            sql += revoke_sql(name, [h for h in kept if (name, h) in granted], database)
        if new_hash or removed or revoked:
            sql += end_sessions_sql(name)
        if sql:
            run_sql(sql)
        record.update(hosts=hosts, databases=databases)
        apply.save_records(config, DBUSERS, records)
    return public_user(record)


def current_hash(name: str, hosts: list[str]) -> str:
    """The stored hash of a user's account (to give a new host the same password)."""
    for host in hosts:
        rows = run_sql(f"SELECT authentication_string FROM mysql.user WHERE User = {quote_string(name)} "
                       f"AND Host = {quote_string(host)};")
        if rows and rows[0][0].startswith("*"):
            return rows[0][0]
    raise apply.Conflict("hosts", f"{name}'s password is not known here; give a new password with the hosts")


def grant(config, name: str, database: object, owner: str | None = None) -> dict:
    """Grant all privileges on one more of the owner's databases."""
    with apply.OP_LOCK:
        record = get_user(config, name, owner)
        database = v.db_object_name(database, record["owner"], "database", engine=ENGINE, kind="database")
        if get_database_or_none(config, database, record["owner"]) is None:
            raise v.ValidationError("database", f"{record['owner']} has no database {database} on this node")
        return update_user(config, name, {"databases": [*record["databases"], database]}, owner)


def revoke(config, name: str, database: str, owner: str | None = None) -> dict:
    """Take a database's grant back."""
    with apply.OP_LOCK:
        record = get_user(config, name, owner)
        if database not in record["databases"]:
            raise apply.NotFound("grant", database)
        return update_user(config, name, {"databases": [d for d in record["databases"] if d != database]}, owner)


def delete_user(config, name: str, owner: str | None = None) -> None:
    """DROP USER on each of its hosts and end its open connections (only a user this agent made)."""
    with apply.OP_LOCK:
        records = apply.load_records(config, DBUSERS)
        record = next((r for r in records if r["name"] == name), None)
        if record is None:
            raise apply.NotFound("database user", name)
        _check_owner(record, owner, "database user")
        run_sql(drop_user_sql(name, record["hosts"]) + end_sessions_sql(name))
        apply.save_records(config, DBUSERS, [r for r in records if r["name"] != name])


def purge_owner(config, owner: str) -> tuple[list[str], list[str]]:
    """Drop every database user and database of an owner held here; (users, databases) removed."""
    with apply.OP_LOCK:
        users = [r["name"] for r in apply.load_records(config, DBUSERS) if r["owner"] == owner]
        for name in users:
            delete_user(config, name)
        databases = [r["name"] for r in apply.load_records(config, DATABASES) if r["owner"] == owner]
        for name in databases:
            delete_database(config, name)
    return users, databases


# --- the server: hardening, listening address, firewall ---------------------------------------------------

HARDEN_SQL = """\
SELECT CONCAT('DROP USER IF EXISTS ', QUOTE(User), '@', QUOTE(Host), ';') FROM mysql.user
  WHERE User = '' OR (User = 'root' AND Host NOT IN ('localhost'));
"""


def harden() -> list[str]:
    """What mysql_secure_installation does: no anonymous users, no remote root, no test database (nor
    grants on test and test_*), root by unix_socket only. Returns the accounts dropped."""
    drops = [row[0] for row in run_sql(HARDEN_SQL)]
    run_sql("".join(f"{line}\n" for line in drops) +
            "DROP DATABASE IF EXISTS test;\n"
            "DELETE FROM mysql.db WHERE Db = 'test' OR Db = 'test\\\\_%';\n"
            "ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket;\n"
            "FLUSH PRIVILEGES;\n")
    return drops


def render_cnf(bind_address: str) -> bytes:
    return apply.render("mariadb.cnf.j2", bind_address=bind_address)


def render_firewall(cluster: list[str]) -> bytes:
    v4 = [a for a in cluster if ipaddress.ip_address(a).version == 4]
    v6 = [a for a in cluster if ipaddress.ip_address(a).version == 6]
    return apply.render("db-firewall.nft.j2", port=PORT, v4=", ".join(v4), v6=", ".join(v6))


def with_default_reloads(config, nft_file):
    """The config with the reloads this module needs where none is configured (on a real node, root /):
    MariaDB restarted (a new listening address needs it), its nft table loaded."""
    if str(config.root) != "/":
        return config
    restart = (["service", "mariadb", "restart"] if getattr(config, "init_system", "systemd") == "sysv"
               else ["systemctl", "restart", "mariadb"])
    defaults = {"mariadb": restart, "db_firewall": ["nft", "-f", str(nft_file)]}
    return dataclasses.replace(config, reload_commands={**defaults, **config.reload_commands})


def configure_server(config, body: dict) -> dict:
    """Make the node's MariaDB listen on its cluster address only, open 3306 only to the cluster's nodes
    (its own nft table, `inet hostfleet_db`), and harden it. Idempotent: unchanged files are not written and
    MariaDB is restarted only when its listening address changed."""
    body = v.object_fields(body, "body", ("bind_address", "cluster"))
    bind_address = v.ip_address(body.get("bind_address"), "bind_address")
    cluster_value = body.get("cluster")
    if not isinstance(cluster_value, list):
        raise v.ValidationError("cluster", "must be a list of the cluster nodes' IP addresses")
    if len(cluster_value) > 4096:
        raise v.ValidationError("cluster", "more than 4096 addresses")
    cluster = sorted({v.ip_address(a, f"cluster[{i}]") for i, a in enumerate(cluster_value)} | {bind_address})
    cnf = apply.under_root(config, SERVER_CNF)
    nft = apply.under_root(config, SERVER_FIREWALL)
    config = with_default_reloads(config, nft)
    with apply.OP_LOCK:
        current = {p: data for p in (cnf, nft) if (data := fsutil.read_or_none(p)) is not None}

        def check(_written: dict) -> None:
            apply.run_checker("db_firewall", ["nft", "-c", "-f", str(nft)])

        firewall = apply.apply_files(config, {nft: render_firewall(cluster)}, {k: d for k, d in current.items()
                                                                               if k == nft}, check, ["db_firewall"])
        server = apply.apply_files(config, {cnf: render_cnf(bind_address)},
                                   {k: d for k, d in current.items() if k == cnf}, lambda _w: None, ["mariadb"])
        dropped = harden()
    return {"bind_address": bind_address, "cluster": cluster, "changed": firewall.changed or server.changed,
            "hardened": dropped}


def load_firewall(config) -> bool:
    """At the agent's start on a db node: load the written `inet hostfleet_db` table again (a reboot empties
    the kernel's tables); False when there is none to load."""
    nft = apply.under_root(config, SERVER_FIREWALL)
    if not nft.exists():
        return False
    apply.reload_service(with_default_reloads(config, nft), "db_firewall")
    return True


def server_state(config) -> dict:
    """The listening address and firewall file as written (none: not configured)."""
    cnf = fsutil.read_or_none(apply.under_root(config, SERVER_CNF))
    return {"configured": cnf is not None,
            "firewall": fsutil.read_or_none(apply.under_root(config, SERVER_FIREWALL)) is not None}


def owner_query(value: str | None) -> str | None:
    return None if value is None else validate_owner(value, "owner")

