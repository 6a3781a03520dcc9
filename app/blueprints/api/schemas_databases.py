"""Schemas of /api/v1/databases and /api/v1/dbusers: a password is write-only and never answered."""

from marshmallow import Schema, fields

from app.blueprints.api.schemas_userdata import IndexedSchema, list_of

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
