"""User data owned by this node: users, web domains, DNS zones, mail domains, mailboxes."""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, current_app, jsonify, request

from agent import validation as v
from agent.ops import certs, db, dns, mail, suspension, users, web
from agent.routes.lists import json_body, json_errors

bp = Blueprint("data", __name__, url_prefix="/v1")
json_errors(bp)


def config():
    """The running agent's configuration."""
    return current_app.config["AGENT_CONFIG"]


def items(rows: list) -> dict:
    """The list shape the API uses everywhere."""
    return {"items": rows}


def owned(rows: list[dict], owner_of: Callable[[dict], str | None] = lambda row: row.get("owner")) -> list[dict]:
    """The rows of the owners named by `?owner=` (repeated for several), or every row without it (400
    naming `owner` for a name no panel user could have). A list asks only for its owners' records,
    not for everything the node holds."""
    if "owner" not in request.args:
        return rows
    wanted = {v.username(owner, "owner") for owner in request.args.getlist("owner")}
    return [row for row in rows if owner_of(row) in wanted]


@bp.get("/users")
def users_index():
    """Panel accounts on this node."""
    return jsonify(items(users.list_users(config())))


@bp.post("/users")
def users_create():
    """Create an account with the master's UID/GID (200 if it already exists as given)."""
    user, changed = users.create(config(), json_body())
    return jsonify(user), 201 if changed else 200


@bp.get("/users/<name>")
def users_show(name: str):
    """One account."""
    return jsonify(users.get(config(), name))


@bp.delete("/users/<name>/data")
def users_purge(name: str):
    """Remove everything the owner holds here, one apply per service (deleting the user); what went."""
    return jsonify(users.purge(config(), name))


@bp.put("/users/<name>")
def users_update(name: str):
    """Change an account's shell."""
    return jsonify(users.update(config(), name, json_body()))


@bp.delete("/users/<name>")
def users_delete(name: str):
    """Remove an account that owns nothing here."""
    users.delete(config(), name)
    return "", 204


@bp.get("/users/<name>/suspension")
def suspension_show(name: str):
    """Whether an owner's sites and mailboxes are suspended here."""
    return jsonify(suspension.get(config(), name))


@bp.put("/users/<name>/suspension")
def suspension_set(name: str):
    """Suspend or resume an owner's sites (503 page) and mailboxes (no login): {"suspended": bool}."""
    return jsonify(suspension.set_suspended(config(), name, json_body()))


@bp.get("/webdomains")
def webdomains_index():
    """Web domains on this node (`?owner=`: those owners')."""
    return jsonify(items(owned(web.list_domains(config()))))


@bp.post("/webdomains")
def webdomains_create():
    """Add a web domain (nginx -t before it is live)."""
    return jsonify(web.create(config(), json_body())), 201


@bp.get("/webdomains/<name>")
def webdomains_show(name: str):
    """One web domain."""
    return jsonify(web.get(config(), name))


@bp.put("/webdomains/<name>")
def webdomains_update(name: str):
    """Change aliases, PHP or document root."""
    return jsonify(web.update(config(), name, json_body()))


@bp.delete("/webdomains/<name>")
def webdomains_delete(name: str):
    """Remove a web domain."""
    web.delete(config(), name)
    return "", 204


@bp.post("/webdomains/<name>/tls/key")
def tls_make_key(name: str):
    """Make the domain's private key here (kept here) and answer its CSR: {"key_type": "ecdsa"|"rsa"}."""
    return jsonify(certs.make_key(config(), name, json_body())), 201


@bp.get("/webdomains/<name>/tls")
def tls_show(name: str):
    """The domain's certificate facts and switches (never the key)."""
    return jsonify(certs.get(config(), name))


@bp.put("/webdomains/<name>/tls")
def tls_settings(name: str):
    """Switch "redirect HTTP to HTTPS" and HSTS: {"redirect": bool, "hsts": bool}."""
    return jsonify(certs.update_settings(config(), name, json_body()))


@bp.put("/webdomains/<name>/tls/certificate")
def tls_install(name: str):
    """Install a certificate for the key this node made: {"certificate": PEM, "chain": PEM}."""
    return jsonify(certs.install(config(), name, json_body()))


@bp.put("/webdomains/<name>/tls/uploaded")
def tls_upload(name: str):
    """Install a certificate with its own key: {"certificate": PEM, "chain": PEM, "key": PEM}; the key is
    checked against the certificate and kept here."""
    return jsonify(certs.upload(config(), name, json_body()))


@bp.delete("/webdomains/<name>/tls/certificate")
def tls_revert(name: str):
    """Serve a self-signed certificate for a new key instead of the current one."""
    return jsonify(certs.revert_to_self_signed(config(), name))


@bp.put("/acme-challenges/<token>")
def acme_challenge_publish(token: str):
    """Serve an HTTP-01 token on port 80: {"key_authorization": "<token>.<thumbprint>"}."""
    return jsonify(certs.publish_challenge(config(), token, json_body()))


@bp.delete("/acme-challenges/<token>")
def acme_challenge_remove(token: str):
    """Stop serving an HTTP-01 token."""
    certs.remove_challenge(config(), token)
    return "", 204


@bp.get("/domains")
def domains_index():
    """Domain names (zones) on this node (`?owner=`: those owners')."""
    return jsonify(items(owned(dns.list_domains(config()))))


@bp.post("/domains")
def domains_create():
    """Add a zone with its starting records."""
    return jsonify(dns.create(config(), json_body())), 201


@bp.get("/domains/<name>")
def domains_show(name: str):
    """One zone with its records."""
    return jsonify(dns.get(config(), name))


@bp.delete("/domains/<name>")
def domains_delete(name: str):
    """Remove a zone."""
    dns.delete(config(), name)
    return "", 204


@bp.get("/domains/<name>/records")
def records_index(name: str):
    """The records of a zone."""
    return jsonify(items(dns.get(config(), name)["records"]))


@bp.post("/domains/<name>/records")
def records_create(name: str):
    """Add a record (named-checkzone on the whole zone first)."""
    return jsonify(dns.add_record(config(), name, json_body())), 201


@bp.put("/domains/<name>/records/<int:record_id>")
def records_update(name: str, record_id: int):
    """Replace a record's data."""
    return jsonify(dns.update_record(config(), name, record_id, json_body()))


@bp.delete("/domains/<name>/records/<int:record_id>")
def records_delete(name: str, record_id: int):
    """Remove a record."""
    dns.delete_record(config(), name, record_id)
    return "", 204


@bp.get("/maildomains")
def maildomains_index():
    """Mail domains on this node (`?owner=`: those owners')."""
    return jsonify(items(owned(mail.list_domains(config()))))


@bp.post("/maildomains")
def maildomains_create():
    """Add a mail domain."""
    return jsonify(mail.create_domain(config(), json_body())), 201


@bp.get("/maildomains/<name>")
def maildomains_show(name: str):
    """One mail domain."""
    return jsonify(mail.get_domain(config(), name))


@bp.delete("/maildomains/<name>")
def maildomains_delete(name: str):
    """Remove a mail domain without mailboxes."""
    mail.delete_domain(config(), name)
    return "", 204


@bp.get("/mailboxes")
def mailboxes_index():
    """Mailboxes on this node, never their hashes (`?owner=`: those in those owners' mail domains)."""
    mailboxes = mail.list_mailboxes(config())
    if "owner" in request.args:
        owners = {d["name"]: d.get("owner") for d in mail.list_domains(config())}
        mailboxes = owned(mailboxes, lambda m: owners.get(m["address"].rpartition("@")[2]))
    return jsonify(items([mail.public(m) for m in mailboxes]))


@bp.post("/mailboxes")
def mailboxes_create():
    """Add a mailbox; its password is hashed before anything is stored."""
    return jsonify(mail.create_mailbox(config(), json_body())), 201


@bp.get("/mailboxes/<address>")
def mailboxes_show(address: str):
    """One mailbox."""
    return jsonify(mail.public(mail.get_mailbox(config(), address)))


@bp.put("/mailboxes/<address>")
def mailboxes_update(address: str):
    """Change a mailbox's password, quota or forwarding."""
    return jsonify(mail.update_mailbox(config(), address, json_body()))


@bp.delete("/mailboxes/<address>")
def mailboxes_delete(address: str):
    """Remove a mailbox."""
    mail.delete_mailbox(config(), address)
    return "", 204


def owner_arg() -> str | None:
    """`?owner=` on a change: the request touches only that owner's object (404 for another's)."""
    return db.owner_query(request.args.get("owner"))


@bp.get("/databases")
def databases_index():
    """Databases on this node with their size in bytes (`?owner=`: those owners')."""
    return jsonify(items(owned(db.list_databases(config()))))


@bp.post("/databases")
def databases_create():
    """Create a database `<owner>_<name>` (charset and collation from the allow-list)."""
    return jsonify(db.create_database(config(), json_body())), 201


@bp.get("/databases/<name>")
def databases_show(name: str):
    """One database."""
    return jsonify(db.get_database(config(), name, owner_arg()))


@bp.delete("/databases/<name>")
def databases_delete(name: str):
    """Drop a database and the grants on it."""
    db.delete_database(config(), name, owner_arg())
    return "", 204


@bp.get("/dbusers")
def dbusers_index():
    """Database users with their grants per host, never a password or hash (`?owner=`: those owners')."""
    return jsonify(items(owned(db.list_users(config()))))


@bp.post("/dbusers")
def dbusers_create():
    """Create a database user for localhost and the given addresses, granted on the given databases."""
    return jsonify(db.create_user(config(), json_body())), 201


@bp.get("/dbusers/<name>")
def dbusers_show(name: str):
    """One database user."""
    return jsonify(db.get_user(config(), name, owner_arg()))


@bp.put("/dbusers/<name>")
def dbusers_update(name: str):
    """Change a database user's password, hosts or granted databases."""
    return jsonify(db.update_user(config(), name, json_body(), owner_arg()))


@bp.delete("/dbusers/<name>")
def dbusers_delete(name: str):
    """Drop a database user on all its hosts."""
    db.delete_user(config(), name, owner_arg())
    return "", 204


@bp.post("/dbusers/<name>/grants")
def dbusers_grant(name: str):
    """Grant all privileges on one more of the owner's databases: {"database"}."""
    return jsonify(db.grant(config(), name, v.object_fields(json_body(), "body", ("database",)).get("database"),
                            owner_arg()))


@bp.delete("/dbusers/<name>/grants/<database>")
def dbusers_revoke(name: str, database: str):
    """Take back a database's grant."""
    return jsonify(db.revoke(config(), name, database, owner_arg()))


@bp.get("/dbserver")
def dbserver_show():
    """Whether the node's MariaDB has been configured by the agent."""
    return jsonify(db.server_state(config()))


@bp.put("/dbserver")
def dbserver_configure():
    """Listen on {"bind_address"}, accept 3306 only from {"cluster"} addresses, harden the server."""
    return jsonify(db.configure_server(config(), json_body()))
