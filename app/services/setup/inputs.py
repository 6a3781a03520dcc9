"""The checked input of a new node: name, address, port, roles, weight, credential, host key."""

from __future__ import annotations

import io
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import paramiko

from agent import validation
from agent.roles import validate_roles
from app.extensions import db
from app.models import Node, User, UserLevel
from app.services import names
from app.services.setup.errors import InputErrors

NODE_NAME_RE = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
FINGERPRINT_RE = re.compile(r"SHA256:[A-Za-z0-9+/]{43}")


@dataclass
class NodeInput:
    """A validated request to add a node (the credential is kept only for the bootstrap)."""

    name: str
    address: str
    ssh_port: int = 22
    roles: list[str] = field(default_factory=list)
    weight: int = 100
    password: str | None = field(default=None, repr=False)
    private_key: paramiko.PKey | None = field(default=None, repr=False)
    host_key_fingerprint: str | None = None


def validate_node_input(data: dict, *, require_credentials: bool = True, require_fingerprint: bool = True) -> NodeInput:
    """Check every field of a new node; raise InputErrors naming each bad field.

    With the credential, the host key fingerprint is required too (unless `require_fingerprint` is
    off): trusting whatever key answers first would hand root's password to whoever answers first."""
    errors: dict[str, str] = {}

    def check(name: str, func: Callable[[], object]) -> object:
        try:
            return func()
        except validation.ValidationError as exc:
            errors[name] = exc.message
            return None

    name = check("name", lambda: _node_name(data.get("name")))
    address = check("address", lambda: _address(data.get("address")))
    port = check("ssh_port", lambda: validation.port(_int_or_raw(data.get("ssh_port", 22)), "ssh_port"))
    roles = check("roles", lambda: validate_roles(data.get("roles", []), name_items=False))
    weight = check("weight", lambda: validation.integer(_int_or_raw(data.get("weight", 100)), "weight", 1, 1000))
    fingerprint = check("host_key_fingerprint", lambda: _fingerprint(data.get("host_key_fingerprint")))
    password = data.get("password") or None
    key_text = data.get("private_key") or None
    pkey = None
    if require_credentials and require_fingerprint and not fingerprint and "host_key_fingerprint" not in errors:
        errors["host_key_fingerprint"] = (
            "required: the node's SSH host key fingerprint (SHA256:..., as `ssh-keygen -lf "
            "/etc/ssh/ssh_host_ed25519_key.pub` prints it on the node)"
        )
    if require_credentials:
        if password and key_text:
            errors["password"] = "give the root password or a private key, not both"
        elif not password and not key_text:
            missing = "private_key" if "private_key" in data and "password" not in data else "password"
            errors[missing] = "the root password (or a private key) is needed once to set the node up"
        elif password:
            password = check("password", lambda: validation.text(password, "password", 1024, empty=False))
        else:
            pkey = check("private_key", lambda: parse_private_key(key_text))
    if name and not errors.get("name") and db.session.scalar(db.select(Node.id).where(Node.name == name)):
        errors["name"] = f"a node named {name} already exists"
    if address and not errors.get("address"):
        held = _held_by_a_customer(address)
        if held:
            errors["address"] = held
    if address and port and not errors.get("address"):
        other = db.session.scalar(db.select(Node.name).where(Node.address == address, Node.ssh_port == port))
        if other:
            errors["address"] = f"node {other} is already this server ({address} port {port})"
    if errors:
        raise InputErrors(errors)
    return NodeInput(name=name, address=address, ssh_port=port, roles=roles, weight=weight, password=password,
                     private_key=pkey, host_key_fingerprint=fingerprint)


def _held_by_a_customer(address: str) -> str | None:
    """Why a node may not take this address: a host name that a customer holds, is above or is below in
    the name registry (the nodes' names are refused to customers only from when the node exists, so a
    name a customer took first would stay theirs, and the cluster's name servers answer it their way)."""
    try:
        ipaddress.ip_address(address)
        return None
    except ValueError:
        pass
    found = names.holders(address)
    if not found:
        return None
    admins = set(db.session.scalars(db.select(User.id).where(User.id.in_({h.owner_id for h in found}),
                                                             User.level == UserLevel.ADMIN.value)))
    customers = sorted((h for h in found if h.owner_id not in admins), key=lambda h: len(h.name))
    if not customers:
        return None
    return (f"{address} is, is above or is below {customers[0].describe()}: a node's host name is not a customer's; "
            "move that name away (or give the node another name) first")


def _int_or_raw(value: object) -> object:
    """Form fields arrive as strings; the API's JSON integers pass through."""
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) < 7:
        return int(value.strip())
    return value


def _node_name(value: object) -> str:
    value = validation.text(value, "name", 63, empty=False)
    if not NODE_NAME_RE.fullmatch(value):
        raise validation.ValidationError("name", "lower-case letters, digits and inner hyphens, at most 63")
    return value


def _address(value: object) -> str:
    value = validation.text(value, "address", 253, empty=False).strip()
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    if re.fullmatch(r"[0-9.]+", value):
        raise validation.ValidationError("address", "not a valid IPv4 address")
    return validation.domain_name(value, "address")



def _fingerprint(value: object) -> str | None:
    if value in (None, ""):
        return None
    value = validation.text(value, "host_key_fingerprint", 128).strip()
    if not FINGERPRINT_RE.fullmatch(value):
        raise validation.ValidationError("host_key_fingerprint", "expected SHA256: and 43 base64 characters")
    return value


def parse_private_key(text: object) -> paramiko.PKey:
    """An OpenSSH or PEM private key (ed25519, ECDSA or RSA), unencrypted."""
    if not isinstance(text, str) or len(text) > 16384:
        raise validation.ValidationError("private_key", "must be a private key in OpenSSH or PEM format")
    for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return cls.from_private_key(io.StringIO(text.strip() + "\n"))
        except paramiko.PasswordRequiredException:
            raise validation.ValidationError("private_key", "the key is encrypted; give an unencrypted key") from None
        except (paramiko.SSHException, ValueError, IndexError, TypeError):
            continue
    raise validation.ValidationError("private_key", "not a private key in OpenSSH or PEM format")


def validate_apt_source(line: str) -> str:
    """The policy's `deb` line: one line, `deb [options] URI suite [components]`."""
    line = validation.text(line or "", "node_apt_source", 1024).strip()
    if line and not re.fullmatch(r"deb(\s+\[[^\]\n]*\])?\s+\S+\s+\S+(\s+\S+)*", line):
        raise validation.ValidationError("node_apt_source", "must be one `deb URI suite [components]` line")
    return line
