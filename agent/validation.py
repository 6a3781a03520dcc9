"""Validators for every value that reaches a file, a config or a command (docs/security.md, "The agent").

Shared by the master and the agent: plain functions that return the normalized value or raise
ValidationError(field, message). Nothing here touches the file system.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import unicodedata
from collections.abc import Iterable

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import email_validator
import idna
from croniter import croniter

MAX_NAME_LENGTH = 253
MAX_LABEL_LENGTH = 63
MAX_TEXT_LENGTH = 255
MAX_COMMAND_LENGTH = 1024
MAX_PASSWORD_LENGTH = 1024
MAX_TXT_LENGTH = 4000
MAX_PORT_ITEMS = 64
MAX_ALIASES = 64
RECORD_TYPES = ("A", "AAAA", "CNAME", "MX", "TXT", "SRV", "CAA", "NS")
# What each record's value looks like, for the message that refuses one.
RECORD_EXAMPLES = {
    "A": "type an IPv4 address, like 192.0.2.10",
    "AAAA": "type an IPv6 address, like 2001:db8::10",
    "CNAME": "type the host name it points to, like www.example.com.",
    "MX": "type the mail server's host name, like mail.example.com.",
    "TXT": "type the text",
    "SRV": "type weight, port and target, like 5 5060 sip.example.com.",
    "CAA": 'type flags, tag and value, like 0 issue "letsencrypt.org"',
    "NS": "type the name server's host name, like ns1.example.com.",
}
CRON_NICKNAMES = frozenset(
    {"@reboot", "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)
# What a field that takes a number says when something else is typed (the API's and the pages' parsers
# say it too, so the same mistake reads the same everywhere).
WHOLE_NUMBER = "must be a whole number, like 10"
SHELLS = ("/bin/bash", "/bin/sh", "/usr/bin/bash", "/usr/sbin/nologin", "/bin/false")
# POSIX portable user names as Debian's adduser accepts them by default.
_USERNAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
# A component may be as long as a file name may (NAME_MAX, 255 bytes): the default document root's is a
# full domain name (253).
_PATH_COMPONENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
MAX_RELATIVE_PATH = 1024
# Underscore labels are legal in DNS owner names (_dmarc, _sip._tcp) though not in host names.
_RECORD_LABEL = re.compile(r"_?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
# Letters, digits and inner hyphens, no "--" in the third and fourth places (where xn-- puts them): a
# label IDNA leaves as it is once lower-cased, so a name of only such labels skips the IDNA codec.
_LDH_LABEL = r"(?![a-z0-9-]{2}--)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_PLAIN_NAME = re.compile(rf"{_LDH_LABEL}(?:\.{_LDH_LABEL})+")
# Characters that end or nest a statement in nginx, bind, exim or a shell; never in a comment.
_SYNTAX_CHARS = frozenset('"\'`\\;{}<>$|&')
# Scripts that legitimately share one label (Japanese mixes Han with both kana sets).
_COMPATIBLE_SCRIPTS = ({"CJK", "HIRAGANA", "KATAKANA"}, {"HANGUL", "CJK"})


class ValidationError(ValueError):
    """A value that must not reach a file: names the field and says why."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def within(self, prefix: str) -> ValidationError:
        """The same error with its field nested under prefix (rows[3].ports)."""
        return ValidationError(f"{prefix}.{self.field}", self.message)


def text(value: object, field: str, max_length: int = MAX_TEXT_LENGTH, empty: bool = True) -> str:
    """A single line of printable text: no control, line or format characters."""
    if not isinstance(value, str):
        raise ValidationError(field, "must be a string")
    if len(value) > max_length:
        raise ValidationError(field, f"longer than {max_length} characters")
    if not empty and not value.strip():
        raise ValidationError(field, "must not be empty")
    for char in value:
        if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            raise ValidationError(field, f"contains a control character (U+{ord(char):04X})")
    return value


def comment(value: object, field: str = "comment") -> str:
    """A free-text comment; also refuses characters that are syntax in a config or a shell."""
    value = text("" if value is None else value, field)
    bad = sorted(set(value) & _SYNTAX_CHARS)
    if bad:
        raise ValidationError(field, f"must not contain {' '.join(bad)}")
    return value.strip()


def integer(value: object, field: str, low: int, high: int) -> int:
    """An integer (not a bool, not a string) within [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, WHOLE_NUMBER)
    if not low <= value <= high:
        raise ValidationError(field, f"must be between {low} and {high}")
    return value


def boolean(value: object, field: str) -> bool:
    """A JSON true or false."""
    if not isinstance(value, bool):
        raise ValidationError(field, "must be true or false")
    return value


def choice(value: object, field: str, allowed: Iterable[str]) -> str:
    """One of a fixed set of words."""
    allowed = tuple(allowed)
    if not isinstance(value, str) or value not in allowed:
        raise ValidationError(field, f"must be one of {', '.join(allowed)}")
    return value


def _script(char: str) -> str | None:
    """The Unicode script of a letter, from its character name (None for digits and '-')."""
    if not unicodedata.category(char).startswith("L"):
        return None
    name = unicodedata.name(char, "")
    first = name.split(" ")[0]
    return "CJK" if first in ("CJK", "IDEOGRAPHIC") else first


def _check_single_script(label: str, field: str) -> None:
    """Refuse a label that mixes scripts, the usual shape of a homoglyph spoof (pаypal)."""
    scripts = {s for s in map(_script, label) if s}
    if len(scripts) <= 1 or any(scripts <= group for group in _COMPATIBLE_SCRIPTS):
        return
    raise ValidationError(field, f"label {label!r} mixes scripts ({', '.join(sorted(scripts))})")


def _name_mistake(value: str) -> str | None:
    """What is wrong with a typed domain name, in words a customer acts on; None when nothing obvious is.

    Catches what people paste (an address with its scheme or path, an e-mail address, spaces) before the
    IDNA codec, whose messages name code points."""
    if "://" in value or value.lower().startswith(("http:", "https:")):
        scheme = value.split(":", 1)[0]
        return f"leave out {scheme}:// and type just the name, like example.com"
    if "@" in value:
        return "that is an e-mail address: type just the domain after the @, like example.com"
    if "/" in value:
        return "a domain name has no path: leave out the / and what follows it"
    if any(char.isspace() for char in value):
        return "must not contain spaces: type one name, with hyphens between words, like my-shop.example.com"
    for char in value:
        if not (char.isalnum() or char in ".-") or char == "_":
            shown = repr(char) if char.isprintable() else f"U+{ord(char):04X}"
            return (f"{shown} is not allowed in a domain name: use letters, digits, hyphens and dots, "
                    "like my-shop.example.com")
    if ".." in value or value.startswith("."):
        return "two dots in a row, or a dot at the start: every part between dots needs a character"
    for label in value.split("."):
        if label.startswith("-") or label.endswith("-"):
            return f"{label!r}: a part of the name must not begin or end with a hyphen"
        if label.isascii() and len(label) > MAX_LABEL_LENGTH:
            return _long_label(label)
    return None


def _long_label(label: str) -> str:
    shown = label if len(label) <= 20 else label[:16] + "…"
    return (f"the part {shown!r} is {len(label)} characters long: each part between dots may have at most "
            f"{MAX_LABEL_LENGTH}")


def domain_name(value: object, field: str = "name") -> str:
    """A host or domain name (Unicode or punycode) as its lower-case ASCII (A-label) form."""
    if isinstance(value, str) and not value.strip():
        raise ValidationError(field, "is empty: type a domain name, like example.com")
    value = text(value, field, max_length=1024, empty=False)
    if value.endswith("."):
        value = value[:-1]
    plain = value.isascii() and _PLAIN_NAME.fullmatch(value.lower())
    try:
        ascii_name = value.lower() if plain else idna.encode(value, uts46=True).decode("ascii")
        unicode_name = ascii_name if plain else idna.decode(ascii_name)
    except (idna.IDNAError, UnicodeError):
        raise ValidationError(field, _name_mistake(value) or "not a valid domain name: use letters (any "
                              "language), digits, hyphens and dots, like example.com or пример.рф") from None
    if len(ascii_name) > MAX_NAME_LENGTH:
        raise ValidationError(field, f"longer than {MAX_NAME_LENGTH} characters")
    labels = ascii_name.split(".")
    if not all(labels):
        # IDNA keeps a final dot: "example.com.." would be "example.com.", another name to every check.
        raise ValidationError(field, "not a valid domain name (two dots in a row, or a dot at the start)")
    if len(labels) < 2:
        raise ValidationError(field, "must have at least two parts, like example.com")
    for label in labels:
        if len(label) > MAX_LABEL_LENGTH:
            raise ValidationError(field, _long_label(label))
    if labels[-1].isdigit():
        raise ValidationError(field, "the last part must not be a number (an address is not a domain name)")
    for label in unicode_name.split("."):
        _check_single_script(label, field)
    return ascii_name.lower()


def record_name(value: object, field: str = "name") -> str:
    """A record owner name relative to its zone: '@', '*', or labels such as www, _dmarc."""
    if isinstance(value, str) and not value.strip():
        raise ValidationError(field, "is empty: type @ for the zone itself, or a name like www or mail")
    value = text(value, field, max_length=MAX_NAME_LENGTH, empty=False).strip()
    if value == "@":
        return value
    if any(char.isspace() for char in value):
        raise ValidationError(field, "must not contain spaces: type a name like www or mail (@ for the zone itself)")
    labels = value.lower().split(".")
    for index, label in enumerate(labels):
        if label == "*" and index == 0:
            continue
        if not label.isascii():
            try:
                label = labels[index] = idna.encode(label, uts46=True).decode("ascii")
            except (idna.IDNAError, UnicodeError):
                raise ValidationError(field, f"{label!r} is not allowed in a record name: use letters (any "
                                             "language), digits and hyphens, like www or почта") from None
        if len(label) > MAX_LABEL_LENGTH:
            raise ValidationError(field, _long_label(label))
        if not _RECORD_LABEL.fullmatch(label):
            raise ValidationError(field, f"{label!r} is not allowed in a record name: use letters, digits and "
                                         "hyphens, like www or _dmarc (@ for the zone itself)")
        if label.startswith("xn--"):
            domain_name(f"{label}.example", field)
    return ".".join(labels)


def email_address(value: object, field: str = "address") -> str:
    """An ASCII e-mail address, normalized; its domain part checked as a domain name."""
    value = text(value, field, max_length=MAX_NAME_LENGTH + 65, empty=False)
    try:
        result = email_validator.validate_email(
            value, check_deliverability=False, allow_smtputf8=False
        )
    except email_validator.EmailNotValidError as exc:
        raise ValidationError(field, str(exc)) from None
    domain = domain_name(result.ascii_domain, field)
    local = local_part(result.local_part, field)
    return f"{local}@{domain}"


def local_part(value: object, field: str = "local_part") -> str:
    """The part of a mailbox address before the @ (dot-atom, no quoting)."""
    value = text(value, field, max_length=64, empty=False)
    if set(value) & (_SYNTAX_CHARS | {":", "/", " ", ",", "*", "#"}):
        raise ValidationError(field, "contains a character not allowed in a mailbox name")
    try:
        email_validator.validate_email(
            f"{value}@example.com", check_deliverability=False, allow_smtputf8=False
        )
    except email_validator.EmailNotValidError as exc:
        raise ValidationError(field, str(exc)) from None
    return value.lower()


def sender(value: object, field: str = "sender") -> str:
    """A sender for the mail white/black lists: a full address or a bare domain."""
    if isinstance(value, str) and "@" in value:
        return email_address(value, field)
    return domain_name(value, field)


def ip_address(value: object, field: str = "ip") -> str:
    """An IPv4 or IPv6 address in its compressed form."""
    value = text(value, field, max_length=64, empty=False).strip()
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValidationError(field, f"{value!r} is not an IP address: type an IPv4 address like 192.0.2.10 or an "
                                     "IPv6 address like 2001:db8::10") from None


def cidr(value: object, field: str = "source") -> str:
    """A network in CIDR notation (a bare address is a /32 or /128); '' means any source."""
    value = text("" if value is None else value, field, max_length=64).strip()
    if not value:
        return ""
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError:
        pass
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValidationError(field, f"{value!r} is not an address or network: type an address like 192.0.2.10 "
                                     "or a network like 192.0.2.0/24") from None
    address = value.split("/")[0]
    raise ValidationError(field, f"{value} is not where a /{network.prefixlen} network starts: type {network} for the "
                                 f"whole network, or {address} alone for one address")


def port(value: object, field: str = "port") -> int:
    """A TCP/UDP port number."""
    return integer(value, field, 1, 65535)


def port_ranges(value: object, field: str = "ports") -> list[tuple[int, int]]:
    """A port list such as '22,80,1000-2000' as sorted (low, high) ranges; '' means all ports."""
    value = text("" if value is None else value, field, max_length=MAX_TEXT_LENGTH).strip()
    if not value:
        return []
    items = value.split(",")
    if len(items) > MAX_PORT_ITEMS:
        raise ValidationError(field, f"more than {MAX_PORT_ITEMS} items")
    ranges = []
    for item in items:
        low_text, _, high_text = item.strip().partition("-")
        bounds = []
        for part in (low_text, high_text or low_text):
            part = part.strip()
            if not part.isascii() or not part.isdigit():
                raise ValidationError(field, f"{item.strip()!r} is not a port or a range")
            bounds.append(int(part))
        low, high = bounds
        if not (1 <= low <= 65535 and 1 <= high <= 65535):
            raise ValidationError(field, f"{item.strip()!r}: ports run from 1 to 65535")
        if low > high:
            raise ValidationError(field, f"{item.strip()!r}: range runs backwards")
        ranges.append((low, high))
    return sorted(set(ranges))


def cron_schedule(value: object, field: str = "schedule") -> str:
    """A five-field cron schedule or a cron nickname (@daily), as cron(8) reads it."""
    value = " ".join(text(value, field, max_length=MAX_TEXT_LENGTH, empty=False).split())
    if value in CRON_NICKNAMES:
        return value
    if len(value.split(" ")) != 5:
        raise ValidationError(field, "must have five fields: minute hour day month weekday")
    if not value.isascii() or not croniter.is_valid(value):
        raise ValidationError(field, f"{value!r} is not a valid cron schedule")
    return value


def cron_command(value: object, field: str = "command") -> str:
    """A command line for cron: one line, no control characters."""
    return text(value, field, max_length=MAX_COMMAND_LENGTH, empty=False).strip()


def username(value: object, field: str = "name") -> str:
    """An OS account name (lower case, starts with a letter or _, at most 32 characters)."""
    value = text(value, field, max_length=64, empty=False)
    if not _USERNAME.fullmatch(value):
        raise ValidationError(
            field, "must be 1-32 of a-z 0-9 _ -, starting with a letter or _"
        )
    return value


def uid(value: object, field: str = "uid") -> int:
    """A UID or GID for a panel user (never a system account, never nobody)."""
    value = integer(value, field, 1000, 2**31 - 1)
    if value == 65534:
        raise ValidationError(field, "65534 is reserved for nobody")
    return value


def shell(value: object, field: str = "shell") -> str:
    """One of the login shells the agent hands out."""
    return choice(value, field, SHELLS)


def relative_path(value: object, field: str = "docroot") -> str:
    """A path below a home folder: relative, plain components, no '..'."""
    value = text(value, field, max_length=MAX_RELATIVE_PATH, empty=False).strip()
    if value.startswith("/"):
        raise ValidationError(field, "must be relative to the owner's home")
    parts = [p for p in value.split("/") if p]
    for part in parts:
        if part in (".", "..") or not _PATH_COMPONENT.fullmatch(part):
            raise ValidationError(field, f"path component {part!r} is not allowed")
    return "/".join(parts)


def password(value: object, field: str = "password") -> str:
    """A password to be hashed: any printable text, 8 characters or more."""
    value = text(value, field, max_length=MAX_PASSWORD_LENGTH, empty=False)
    if len(value) < 8:
        raise ValidationError(field, "must be at least 8 characters")
    return value


def ttl(value: object, field: str = "ttl") -> int:
    """A record TTL in seconds."""
    return integer(value, field, 0, 2**31 - 1)


def record_value(zone: str, rtype: str, value: object, priority: object = None) -> str:
    """A record's data as dnspython parses it, in canonical text with absolute names."""
    rtype = choice(rtype, "type", RECORD_TYPES)
    origin = dns.name.from_text(zone)
    if rtype == "TXT":
        content = text(value, "value", max_length=MAX_TXT_LENGTH)
        raw = content.encode("utf-8")
        chunks = [raw[i : i + 255] for i in range(0, len(raw), 255)] or [b""]
        rdata = dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, dns.rdatatype.TXT, chunks)
        return rdata.to_text()
    value = text(value, "value", max_length=MAX_NAME_LENGTH + 64, empty=False).strip()
    # Zone-file syntax a value could smuggle in: comments, grouping, escapes.
    forbidden = {";", "(", ")", "\\", "$"} | ({'"'} if rtype != "CAA" else set())
    bad = sorted(set(value) & forbidden)
    if bad:
        raise ValidationError("value", f"must not contain {' '.join(bad)}")
    if rtype in ("MX", "SRV"):
        if priority is None or priority == "":
            raise ValidationError("priority", f"an {rtype} record needs a priority: a number from 0 to 65535, lower "
                                              "is tried first (10 is usual)")
        value = f"{integer(priority, 'priority', 0, 65535)} {value}"
    try:
        rdata = dns.rdata.from_text(
            dns.rdataclass.IN, rtype, value, origin=origin, relativize=False
        )
    except (dns.exception.DNSException, ValueError):
        raise ValidationError("value", f"{value!r} is not valid for a{'n' if rtype[0] in 'AM' else ''} {rtype} "
                                       f"record: {RECORD_EXAMPLES[rtype]}") from None
    for target in _rdata_names(rdata):
        if target != dns.name.root:
            domain_name(target.to_text(), "value")
    return rdata.to_text(origin=origin, relativize=False)


def _rdata_names(rdata: dns.rdata.Rdata) -> list[dns.name.Name]:
    """The host names a record points at (so they get the same checks as domain names)."""
    return [getattr(rdata, attr) for attr in ("target", "exchange") if hasattr(rdata, attr)]


def object_fields(value: object, field: str, allowed: Iterable[str]) -> dict:
    """A JSON object holding no keys beyond allowed."""
    if not isinstance(value, dict):
        raise ValidationError(field, "must be a JSON object")
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise ValidationError(unknown[0] if field == "body" else f"{field}.{unknown[0]}",
                              "unknown field")
    return value


# The engines' own limits on names (docs/agent-ops.md, "Databases"): MariaDB 64 characters for a
# database, 80 for a user; PostgreSQL 63 bytes for any identifier.
DB_NAME_LIMITS = {
    "mariadb": {"database": 64, "user": 80},
    "postgresql": {"database": 63, "user": 63},
}
# Schemas and accounts of the engines themselves: never a customer's, whatever the prefix rule says.
SYSTEM_DATABASES = frozenset({"mysql", "information_schema", "performance_schema", "sys", "test",
                              "postgres", "template0", "template1"})
SYSTEM_DB_USERS = frozenset({"root", "mysql", "mariadb.sys", "debian-sys-maint", "postgres"})
_DB_OBJECT_REST = re.compile(r"[a-z0-9_]+")


def db_object_name(value: object, owner: str, field: str = "name", *, engine: str = "mariadb",
                   kind: str = "database") -> str:
    """A database or database user name: `<owner>_` then lower-case letters, digits and `_`, within the
    engine's limit. Only these characters reach SQL, always quoted as well."""
    limit = DB_NAME_LIMITS[engine][kind]
    value = text(value, field, max_length=1024, empty=False)
    prefix = f"{owner}_"
    if len(value) > limit:
        raise ValidationError(field, f"longer than {limit} characters (the {engine} limit for a {kind} name)")
    if value in SYSTEM_DATABASES or value in SYSTEM_DB_USERS:
        raise ValidationError(field, f"{value} is the engine's own; choose another name")
    if not value.startswith(prefix) or len(value) == len(prefix):
        raise ValidationError(field, f"must start with the owner's prefix {prefix} and go on after it, "
                                     f"like {prefix}shop")
    rest = value[len(prefix):]
    if not _DB_OBJECT_REST.fullmatch(rest):
        bad = next(char for char in rest if not _DB_OBJECT_REST.fullmatch(char))
        shown = repr(bad) if bad.isprintable() else f"U+{ord(bad):04X}"
        raise ValidationError(field, f"{shown} is not allowed: after {prefix} use lower-case letters a-z, "
                                     "digits and _")
    return value


# SSH public keys a hosting account may log in with over SFTP (OpenSSH's authorized_keys types).
SSH_KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa",
                 "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com")
MIN_RSA_BITS = 2048
MAX_SSH_KEY_BLOB = 2048  # bytes of the decoded key: RSA 16384 bits is about 2 KB
MAX_SSH_KEY_COMMENT = 100
MAX_SSH_KEYS = 20
_SSH_COMMENT = re.compile(r"[A-Za-z0-9 @._+=:,/()-]*")
# crypt(3) hashes PAM checks: yescrypt ($y$) and sha512-crypt ($6$); no ':' or newline reaches /etc/shadow.
_CRYPT_HASH = re.compile(r"\$(?:y\$[./A-Za-z0-9]+\$[./A-Za-z0-9]{1,86}|6\$(?:rounds=[0-9]{4,9}\$)?[./A-Za-z0-9]{1,16})"
                         r"\$[./A-Za-z0-9]{43,86}")


def _ssh_strings(blob: bytes, field: str) -> list[bytes]:
    """The length-prefixed strings of an SSH wire-format public key (RFC 4253 section 6.6)."""
    parts, offset = [], 0
    while offset < len(blob):
        if offset + 4 > len(blob):
            raise ValidationError(field, "the key data is truncated")
        length = int.from_bytes(blob[offset:offset + 4], "big")
        if offset + 4 + length > len(blob):
            raise ValidationError(field, "the key data is truncated")
        parts.append(blob[offset + 4:offset + 4 + length])
        offset += 4 + length
    return parts


def ssh_public_key(value: object, field: str = "key") -> str:
    """One OpenSSH public key line, `<type> <base64> [comment]`, checked: a known type, base64 whose
    decoded data names the same type, RSA of 2048 bits or more; no options, no control character. Returns it
    normalized (single spaces, the comment kept)."""
    value = text(value, field, max_length=4 * MAX_SSH_KEY_BLOB, empty=False).strip()
    parts = value.split(None, 2)
    if parts[0] not in SSH_KEY_TYPES:
        raise ValidationError(field, f"must start with a key type: {', '.join(SSH_KEY_TYPES)}")
    if len(parts) < 2:
        raise ValidationError(field, "has no key data after its type")
    key_type, data = parts[0], parts[1]
    comment_text = parts[2].strip() if len(parts) > 2 else ""
    try:
        blob = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError(field, "the key data is not valid base64") from None
    if len(blob) > MAX_SSH_KEY_BLOB:
        raise ValidationError(field, f"the key data is over {MAX_SSH_KEY_BLOB} bytes")
    strings = _ssh_strings(blob, field)
    if not strings or strings[0].decode("ascii", "replace") != key_type:
        raise ValidationError(field, f"the key data is not a {key_type} key")
    if key_type == "ssh-rsa":
        if len(strings) != 3:
            raise ValidationError(field, "the key data is not a whole ssh-rsa key")
        bits = int.from_bytes(strings[2], "big").bit_length()
        if bits < MIN_RSA_BITS:
            raise ValidationError(field, f"an RSA key of {bits} bits is too weak: use {MIN_RSA_BITS} bits or more, "
                                         "or ssh-ed25519")
    elif key_type == "ssh-ed25519" and (len(strings) != 2 or len(strings[1]) != 32):
        raise ValidationError(field, "the key data is not a whole ssh-ed25519 key")
    if len(comment_text) > MAX_SSH_KEY_COMMENT or not _SSH_COMMENT.fullmatch(comment_text):
        raise ValidationError(field, f"the comment after the key may hold up to {MAX_SSH_KEY_COMMENT} letters, "
                                     "digits, spaces and @._+=:,/()-")
    return " ".join(p for p in (key_type, data, comment_text) if p)


def ssh_public_keys(value: object, field: str = "ssh_keys") -> list[str]:
    """A list of public keys (at most MAX_SSH_KEYS), each checked by ssh_public_key, without repeats."""
    if not isinstance(value, list):
        raise ValidationError(field, "must be a list of public keys")
    if len(value) > MAX_SSH_KEYS:
        raise ValidationError(field, f"at most {MAX_SSH_KEYS} keys")
    keys = [ssh_public_key(item, f"{field}[{index}]") for index, item in enumerate(value)]
    seen = set()
    for index, key in enumerate(keys):
        blob = key.split()[1]
        if blob in seen:
            raise ValidationError(f"{field}[{index}]", "the same key is listed twice")
        seen.add(blob)
    return keys


def crypt_hash(value: object, field: str = "password_hash") -> str:
    """A crypt(3) password hash PAM accepts: yescrypt or sha512-crypt."""
    if not isinstance(value, str) or not _CRYPT_HASH.fullmatch(value):
        raise ValidationError(field, "must be a yescrypt ($y$) or sha512-crypt ($6$) hash")
    return value
