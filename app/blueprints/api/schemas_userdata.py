"""Marshmallow schemas of the user-data API. Inputs are strict: no coercion of types."""

from marshmallow import Schema, fields, validate

from app.models.userdata import LIMIT_KEYS, USER_ROLES


def _bool(**kwargs):
    """A JSON true or false only (no "yes", "1" or 0)."""
    return fields.Boolean(truthy={True}, falsy={False}, **kwargs)


def _override():
    """The explicit field an administrator sets to let an owner hold a name the registry refuses."""
    return _bool(load_only=True, metadata={"description": (
        "administrators only: set aside the name registry's refusal (another owner's name, a parent or child "
        "of it, or a host name of the panel or its nodes); recorded with who and when")})


def _int(**kwargs):
    """A JSON integer only (no "5", no 5.0)."""
    return fields.Integer(strict=True, **kwargs)


class LimitsSchema(Schema):
    """Per-user limits; null or absent means unlimited."""

    webdomains = _int(allow_none=True)
    domains = _int(allow_none=True)
    maildomains = _int(allow_none=True)
    mailboxes = _int(allow_none=True)
    disk_mb = _int(allow_none=True)


class UserInSchema(Schema):
    """A user to create or change (password write-only)."""

    name = fields.String()
    password = fields.String(load_only=True)
    level = fields.String(metadata={"enum": ["user", "admin"]})
    roles = fields.List(fields.String(metadata={"enum": list(USER_ROLES)}))
    limits = fields.Dict(keys=fields.String(metadata={"enum": list(LIMIT_KEYS)}), values=fields.Raw(allow_none=True))
    nodes = fields.Dict(keys=fields.String(metadata={"enum": list(USER_ROLES)}), values=fields.Raw(),
                        metadata={"description": "{role: node id or name}: the admin's choice of node"})
    active = _bool()
    plan = fields.Raw(allow_none=True, metadata={
        "description": "the plan's name or id (null: none); its limits apply where the user has none of their own, "
                       "and a new user without roles gets the plan's"})


class UserSchema(Schema):
    """A panel user with their hosting account."""

    id = fields.Integer(required=True)
    name = fields.String(required=True)
    level = fields.String(required=True)
    active = fields.Boolean(required=True)
    roles = fields.List(fields.String(), required=True)
    limits = fields.Nested(LimitsSchema, required=True)
    plan = fields.String(allow_none=True)
    effective_limits = fields.Dict(keys=fields.String(), values=fields.Integer(), metadata={
        "description": "the limits that apply: the user's own over their plan's; absent means no limit"})
    uid = fields.Integer(allow_none=True)
    gid = fields.Integer(allow_none=True)
    location = fields.Dict(keys=fields.String(), values=fields.String(allow_none=True))
    disk_used_mb = fields.Float(allow_none=True, metadata={
        "description": "MB their files take on the nodes, as the nodes' agents last measured "
                       "(about once a minute); null until measured"})
    nodes = fields.List(fields.Nested("NodeOutcomeSchema"),
                        metadata={"description": "after a suspension or resumption: what each node did"})


class UserListSchema(Schema):
    """Lists answer {"items": [...]}."""

    items = fields.List(fields.Nested(UserSchema), required=True)


class NodeOutcomeSchema(Schema):
    """What a user deletion did on one node."""

    node_id = fields.Integer()
    node = fields.String()
    outcome = fields.String(metadata={"enum": ["applied", "failed", "unavailable"]})
    removed = fields.List(fields.String())
    error = fields.String(allow_none=True)


class UserDeletedSchema(Schema):
    """The per-node report of a user deletion."""

    deleted = fields.Boolean(required=True)
    error = fields.String()
    nodes = fields.List(fields.Nested(NodeOutcomeSchema), required=True)


class SshKeyInSchema(Schema):
    """A public key to add for SFTP logins."""

    key = fields.String(required=True, metadata={"description": "one OpenSSH public key line: type, base64 "
                                                                "data, optional comment (ssh-ed25519, ecdsa, RSA "
                                                                "of 2048 bits or more)"})


class SshKeySchema(Schema):
    """One of a user's SFTP public keys."""

    id = fields.String(required=True, metadata={"description": "hex SHA-256 of the key's data"})
    type = fields.String(required=True)
    comment = fields.String(required=True)
    fingerprint = fields.String(required=True, metadata={"description": "as `ssh-keygen -l` shows it"})
    key = fields.String(required=True)


class SshKeyListSchema(Schema):
    """A user's SFTP public keys."""

    items = fields.List(fields.Nested(SshKeySchema), required=True)


class SshKeyAddedSchema(SshKeySchema):
    """The key added, and whether each node holding the user has it (a node that missed it gets it at its
    next sync)."""

    nodes = fields.List(fields.Nested(NodeOutcomeSchema), required=True)


class SshKeyDeletedSchema(Schema):
    """Whether each node holding the user dropped the key."""

    nodes = fields.List(fields.Nested(NodeOutcomeSchema), required=True)


LocationSchema = Schema.from_dict(
    {role: fields.String(allow_none=True) for role in USER_ROLES}, name="LocationSchema"
)


class IndexedSchema(Schema):
    """Fields every proxied record carries: the index id, owner and holding node."""

    id = fields.Integer(required=True)
    owner = fields.String(required=True)
    node = fields.String(required=True)
    available = fields.Boolean(metadata={"description": "false when the holding node did not answer the listing"})
    state = fields.String(metadata={"enum": ["ready", "creating"], "description": (
        "creating: a create in flight, or one whose node did not answer and that the next statistics poll settles "
        "from what the node holds; it cannot be opened, changed or deleted until then")})
    dns = fields.Dict(metadata={"description": "what a create with dns=true did: zone, created_zone, records, "
                                               "or error / skipped"})


class PhpSettingsSchema(Schema):
    """A site's own php.ini settings; each one left out is the server's default (Debian's php.ini)."""

    memory_limit = fields.Raw(metadata={"description": "a size: 256M, 1G or a number of MB; 16M to 4G (default "
                                                       "128M)", "example": "256M"})
    upload_max_filesize = fields.Raw(metadata={"description": "a size, 1M to 2G (default 2M); at most "
                                                              "post_max_size", "example": "64M"})
    post_max_size = fields.Raw(metadata={"description": "a size, 1M to 2G (default 8M)", "example": "64M"})
    max_execution_time = _int(metadata={"description": "seconds, 1 to 3600 (default 30)"})
    display_errors = _bool(metadata={"description": "show PHP's errors in the page (default false)"})


class WebDomainInSchema(Schema):
    """A web domain to create or change."""

    name = fields.String()
    aliases = fields.List(fields.String())
    owner = fields.String(metadata={"description": "the owner's user name; administrators only"})
    php = _bool()
    docroot = fields.String(metadata={"description": "relative to the owner's home; default www/<name>"})
    php_settings = fields.Nested(PhpSettingsSchema, metadata={"description": (
        "the site's own php.ini settings, as admin values of a PHP-FPM pool of its own; a change replaces the "
        "whole set, {} goes back to the server's defaults")})
    dns = _bool(load_only=True, metadata={"description": "also create DNS records in the owner's zone "
                                                         "(or a new zone) pointing at the web node"})
    override = _override()


def _unicode_form(of: str):
    """The Unicode form of a name kept as A-labels (`пример.рф` for `xn--e1afmkfd.xn--p1ai`)."""
    return fields.String(dump_only=True, metadata={"description": (
        f"`{of}` as people write it: its A-labels (xn--…) decoded; the same as `{of}` for an ASCII name")})


class WebDomainSchema(IndexedSchema):
    """A web domain as its node holds it."""

    name = fields.String(required=True)
    name_unicode = _unicode_form("name")
    aliases = fields.List(fields.String())
    php = fields.Boolean()
    docroot = fields.String()
    php_settings = fields.Dict(metadata={"description": "the site's own php.ini settings, normalized: sizes as "
                                                        "\"<n>M\", seconds, display_errors \"on\"/\"off\""})


class RecordInSchema(Schema):
    """A DNS record to add or change."""

    id = _int()
    name = fields.String()
    type = fields.String(metadata={"enum": ["A", "AAAA", "CNAME", "MX", "TXT", "SRV", "CAA", "NS"]})
    value = fields.String()
    ttl = _int()
    priority = _int(allow_none=True)


class RecordSchema(Schema):
    """A DNS record."""

    id = fields.Integer(required=True)
    name = fields.String(required=True)
    type = fields.String(required=True)
    value = fields.String(required=True)
    ttl = fields.Integer(required=True)
    priority = fields.Integer(allow_none=True)


class RecordListSchema(Schema):
    """Lists answer {"items": [...]}."""

    items = fields.List(fields.Nested(RecordSchema), required=True)


class DomainInSchema(Schema):
    """A domain name (zone) to create, with its starting records."""

    name = fields.String()
    owner = fields.String()
    ip = fields.String(allow_none=True, metadata={"description": "A/AAAA for @, www and ns1"})
    nameservers = fields.List(fields.String())
    records = fields.List(fields.Dict())
    override = _override()


class DomainSchema(IndexedSchema):
    """A domain name as its node holds it."""

    name = fields.String(required=True)
    name_unicode = _unicode_form("name")
    serial = fields.Integer()
    records = fields.List(fields.Nested(RecordSchema))


class MailDomainInSchema(Schema):
    """A mail domain to create."""

    name = fields.String()
    owner = fields.String()
    dns = _bool(load_only=True, metadata={"description": "also create mail.<name> and an MX record"})
    override = _override()


class MailDomainSchema(IndexedSchema):
    """A mail domain."""

    name = fields.String(required=True)
    name_unicode = _unicode_form("name")


class MailboxInSchema(Schema):
    """A mailbox to create or change; the password is hashed on the node and never stored here."""

    address = fields.String()
    password = fields.String(load_only=True)
    quota_mb = _int()
    forward = fields.List(fields.String(), metadata={"description": "addresses that get a copy (kept here too)"})


class MailboxSchema(IndexedSchema):
    """A mailbox (never its password or hash)."""

    address = fields.String(required=True)
    address_unicode = _unicode_form("address")
    quota_mb = fields.Integer()
    forward = fields.List(fields.String())


MAX_PER_PAGE = 1000


class PageArgsSchema(Schema):
    """`?page=&per_page=` of a list (by name; 100 per page unless asked)."""

    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = fields.Integer(load_default=100, validate=validate.Range(min=1, max=MAX_PER_PAGE))


def list_of(schema: type[Schema], name: str) -> type[Schema]:
    """The {"items": [...], "total", "page", "per_page"} shape of a schema."""
    return Schema.from_dict({"items": fields.List(fields.Nested(schema), required=True),
                             "total": fields.Integer(required=True), "page": fields.Integer(required=True),
                             "per_page": fields.Integer(required=True)}, name=name)


WebDomainListSchema = list_of(WebDomainSchema, "WebDomainListSchema")
DomainListSchema = list_of(DomainSchema, "DomainListSchema")
MailDomainListSchema = list_of(MailDomainSchema, "MailDomainListSchema")
MailboxListSchema = list_of(MailboxSchema, "MailboxListSchema")


# --- databases and database users: a password is write-only and never answered ---------------------------

_NOTICES = fields.List(fields.String(), metadata={
    "description": "what the master did to the request, such as adding the owner's prefix to a name"})


class DatabaseInSchema(Schema):
    """A database to create: `<owner>_<name>` (the prefix is added when missing)."""

    name = fields.String(metadata={"description": "at most 64 characters with the prefix; a-z, 0-9 and _"})
    owner = fields.String(metadata={"description": "administrators only: the user who will own it"})
    engine = fields.String(metadata={"enum": ["mariadb"]})
    charset = fields.String(metadata={"enum": ["utf8mb4", "utf8mb3", "latin1"]})
    collation = fields.String()


class ConnectionSchema(Schema):
    """Where an application on the cluster's web nodes reaches the database."""

    host = fields.String(required=True)
    port = fields.Integer(required=True)
    database = fields.String(required=True)


class DatabaseSchema(IndexedSchema):
    """A database, with its size in bytes (lists) and its connection details."""

    name = fields.String(required=True)
    engine = fields.String()
    charset = fields.String()
    collation = fields.String()
    size = fields.Integer(metadata={"description": "bytes of data and indexes, from information_schema"})
    connection = fields.Nested(ConnectionSchema)
    notices = _NOTICES


class DbUserInSchema(Schema):
    """A database user to create or change; the password is kept only as MariaDB's hash on the db node."""

    name = fields.String(metadata={"description": "at most 80 characters with the prefix; a-z, 0-9 and _"})
    owner = fields.String()
    password = fields.String(load_only=True)
    databases = fields.List(fields.String(), metadata={"description": "the owner's databases it is granted"})


class DbUserSchema(IndexedSchema):
    """A database user (never its password or hash)."""

    name = fields.String(required=True)
    engine = fields.String()
    hosts = fields.List(fields.String(), metadata={"description": "where it may connect from: localhost and the "
                                                                  "cluster's web nodes"})
    databases = fields.List(fields.String())
    grants = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))
    notices = _NOTICES


class GrantInSchema(Schema):
    """One more of the owner's databases to grant all privileges on."""

    database = fields.String()


DatabaseListSchema = list_of(DatabaseSchema, "DatabaseListSchema")
DbUserListSchema = list_of(DbUserSchema, "DbUserListSchema")
