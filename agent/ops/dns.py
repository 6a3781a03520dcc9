"""Domain names: one bind zone file per domain, a generated include for named.conf, and bind's options.

On a node with bind installed (Debian's `etc/bind/named.conf` exists) the agent also writes Debian's
`named.conf.options`, which that named.conf includes and which holds the server's one `options`
block: an authoritative-only server (no recursion, no zone transfers, no version). The options must
go there: bind takes one `options` block, so a second one in the panel's include would be refused.
"""

from __future__ import annotations

import datetime
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from agent import fsutil
from agent import validation as v
from agent.ops import apply

KIND = "domains"
ZONE_DIR = "etc/bind/hostfleet"
INCLUDE = "etc/bind/named.conf.hostfleet"
# Debian's named.conf includes named.conf.local, meant for the admin's zones: the panel's go in there.
NAMED_CONF = "etc/bind/named.conf"
NAMED_LOCAL = "etc/bind/named.conf.local"
NAMED_OPTIONS = "etc/bind/named.conf.options"
# Where Debian's bind keeps its working files (the options' `directory`).
CACHE_DIR = "var/cache/bind"
DEFAULT_TTL = 3600
DOMAIN_FIELDS = ("name", "owner", "ip", "nameservers", "records")
RECORD_FIELDS = ("id", "name", "type", "value", "ttl", "priority")
HOST_OWNER_TYPES = ("A", "AAAA", "MX")
CHECK_WORKERS = max(2, (os.cpu_count() or 1) * 2)


def validate_record(zone: str, data: object, record_id: int) -> dict:
    """One record, its data parsed by dnspython and kept in canonical text."""
    data = v.object_fields(data, "body", RECORD_FIELDS)
    rtype = v.choice(data.get("type"), "type", v.RECORD_TYPES)
    priority = data.get("priority")
    name = v.record_name(data.get("name", "@"), "name")
    if rtype in HOST_OWNER_TYPES and any(label.startswith("_") for label in name.split(".")):
        # bind's check-names refuses these; say so per field instead of via the checker.
        raise v.ValidationError("name", f"{rtype} records need a host name (no _labels)")
    return {
        "id": record_id,
        "name": name,
        "type": rtype,
        "data": v.record_value(zone, rtype, data.get("value"), priority),
        "ttl": v.ttl(data.get("ttl", DEFAULT_TTL), "ttl"),
        "priority": v.integer(priority, "priority", 0, 65535) if priority is not None else None,
    }


def validate_domain(data: object, users: set[str]) -> dict:
    """A new domain name with its starting records (NS, and A records when ip is given)."""
    data = v.object_fields(data, "body", DOMAIN_FIELDS)
    zone = v.domain_name(data.get("name"), "name")
    owner = v.username(data.get("owner"), "owner")
    if owner not in users:
        raise v.ValidationError("owner", f"no account {owner!r} on this node")
    ip = v.ip_address(data["ip"], "ip") if data.get("ip") is not None else None
    nameservers = data.get("nameservers") or []
    if not isinstance(nameservers, list) or len(nameservers) > 13:
        raise v.ValidationError("nameservers", "must be a list of at most 13 host names")
    nameservers = [v.domain_name(ns, "nameservers") for ns in nameservers]
    if not nameservers:
        if ip is None:
            raise v.ValidationError("ip", "required when no nameservers are given")
        nameservers = [f"ns1.{zone}"]
    family = "AAAA" if ip and ":" in ip else "A"
    start = [{"name": "@", "type": "NS", "value": f"{ns}."} for ns in nameservers]
    if ip:
        start += [{"name": "@", "type": family, "value": ip},
                  {"name": "www", "type": family, "value": ip}]
        if nameservers == [f"ns1.{zone}"]:
            start.append({"name": "ns1", "type": family, "value": ip})
    extra = data.get("records") or []
    if not isinstance(extra, list):
        raise v.ValidationError("records", "must be a list")
    records = []
    for index, record in enumerate([*start, *extra], 1):
        try:
            records.append(validate_record(zone, record, index))
        except v.ValidationError as exc:
            raise exc.within(f"records[{index - len(start) - 1}]") from None
    return {"name": zone, "owner": owner, "serial": 0, "records": records}


def zone_path(config, zone: str) -> Path:
    """The zone file of a domain."""
    return apply.under_root(config, f"{ZONE_DIR}/{zone}.zone")


def render_zone(domain: dict, serial: int) -> bytes:
    """A zone file; the SOA names the first NS record as the primary."""
    ns = [r["data"] for r in domain["records"] if r["type"] == "NS" and r["name"] == "@"]
    return apply.render(
        "zone.j2", zone=domain["name"], owner=domain["owner"], default_ttl=DEFAULT_TTL,
        primary_ns=ns[0] if ns else f"ns1.{domain['name']}.", serial=serial, records=domain["records"],
    )


def next_serial(old: int) -> int:
    """A serial above old, in YYYYMMDDnn form while that still increases."""
    today = int(datetime.date.today().strftime("%Y%m%d")) * 100
    return max(old + 1, today)


def plan(config, domains: list[dict]) -> dict[Path, bytes]:
    """The files for domains; a zone whose content changed gets a higher serial (in place)."""
    files = {}
    for domain in domains:
        path = zone_path(config, domain["name"])
        content = render_zone(domain, domain["serial"])
        if fsutil.read_or_none(path) != content:
            domain["serial"] = next_serial(domain["serial"])
            content = render_zone(domain, domain["serial"])
        files[path] = content
    zones = [{"name": d["name"], "file": zone_path(config, d["name"])} for d in domains]
    include = apply.under_root(config, INCLUDE)
    files[include] = apply.render("named-include.conf.j2", zones=zones)
    local = apply.under_root(config, NAMED_LOCAL)
    if apply.under_root(config, NAMED_CONF).exists():
        files[local] = with_include(fsutil.read_or_none(local) or b"", include)
        files[apply.under_root(config, NAMED_OPTIONS)] = render_options(config)
    return files


def render_options(config) -> bytes:
    """named.conf.options for an authoritative-only server (see the module's docstring)."""
    return apply.render("named-options.conf.j2", cache_dir=apply.under_root(config, CACHE_DIR))


def with_include(text: bytes, include: Path) -> bytes:
    """named.conf.local as it is, with the include of the panel's zones added once at its end."""
    line = f'include "{include}";\n'.encode()
    if line in text.splitlines(keepends=True) or line.rstrip() in text.splitlines():
        return text
    return text + (b"" if not text or text.endswith(b"\n") else b"\n") + line


def check(config, written: dict[Path, bytes]) -> None:
    """named-checkconf on the include, named-checkzone on every zone written."""
    main = apply.under_root(config, NAMED_CONF)
    # A node with bind installed: the whole configuration as named will read it, else the include alone.
    conf = main if main.exists() else apply.under_root(config, INCLUDE)
    apply.run_checker("bind", ["named-checkconf", str(conf)])
    zones = [(p.name[: -len(".zone")], p) for p in written if p.suffix == ".zone"]

    def check_zone(item):
        zone, path = item
        apply.run_checker("bind", ["named-checkzone", "-k", "fail", zone, str(path)])

    with ThreadPoolExecutor(CHECK_WORKERS) as pool:
        list(pool.map(check_zone, zones))


def apply_domains(config, domains: list[dict]) -> apply.Result:
    """Make the zone tree hold exactly these domains; check, write, reload bind."""
    desired = plan(config, domains)
    current = fsutil.read_tree(apply.under_root(config, ZONE_DIR), ".zone")
    for path in (apply.under_root(config, INCLUDE), apply.under_root(config, NAMED_LOCAL),
                 apply.under_root(config, NAMED_OPTIONS)):
        if path in desired and path.exists():
            current[path] = path.read_bytes()
    result = apply.apply_files(config, desired, current, lambda w: check(config, w), ["bind"])
    if not apply.dry_run():
        close_zone_dir(config)
    return result


# The group Debian's named runs as: the only reader of the zone files besides root.
BIND_GROUP = "bind"


def close_zone_dir(config) -> None:
    """The zone files' folder is `root:bind 0750`: every customer has a shell, and the files list every
    zone on the node, whole (what refusing zone transfers keeps private)."""
    apply.close_folder(config, ZONE_DIR, BIND_GROUP)


def replace_all(config, rows: list) -> apply.Result:
    """Full replace of the node's domain names (the bench and a resync use it)."""
    if not isinstance(rows, list):
        raise v.ValidationError("rows", "must be a list")
    users = apply.known_users(config)
    with apply.OP_LOCK:
        serials = {d["name"]: d["serial"] for d in list_domains(config)}
        domains = apply.validate_rows(rows, lambda row: validate_domain(row, users))
        for domain in domains:
            domain["serial"] = serials.get(domain["name"], 0)
        return _commit(config, domains)


def apply_config(config) -> apply.Result:
    """Write bind's configuration for the domains this node holds (none: the options and an empty
    include), as after a change; run when the dns role is installed and when the agent starts, so a
    node's bind is authoritative-only before its first zone, and after an agent upgrade."""
    with apply.OP_LOCK:
        return _commit(config, list_domains(config))


def list_domains(config) -> list[dict]:
    """Every domain name on this node, with its records."""
    return apply.load_records(config, KIND)


def get(config, name: str) -> dict:
    """One domain name."""
    return apply.find_record(config, KIND, name, "domain")


def create(config, data: object) -> dict:
    """Add a domain name with its starting records; 409 if it exists."""
    domain = validate_domain(data, apply.known_users(config))
    with apply.OP_LOCK:
        domains = list_domains(config)
        if any(d["name"] == domain["name"] for d in domains):
            raise apply.Conflict("name", f"domain {domain['name']} exists")
        _commit(config, [*domains, domain])
    return domain


def delete(config, name: str) -> None:
    """Remove a domain's zone and its include entry."""
    with apply.OP_LOCK:
        get(config, name)
        _commit(config, [d for d in list_domains(config) if d["name"] != name])


def purge_owner(config, owner: str) -> list[str]:
    """Remove every zone of an owner in one apply (one check and bind reload); the names removed."""
    return apply.purge_owner(config, KIND, owner, _commit)


def add_record(config, zone: str, data: object) -> dict:
    """Add a record to a zone (checked by named-checkzone with the rest of the zone)."""
    with apply.OP_LOCK:
        domain = get(config, zone)
        # Past every id the zone ever gave, not only past the records it holds: a stale page's "delete
        # record 5" must name nothing, never a newer record 5.
        next_id = max(max((r["id"] for r in domain["records"]), default=0), domain.get("last_record_id", 0)) + 1
        record = validate_record(domain["name"], data, next_id)
        domain["records"].append(record)
        domain["last_record_id"] = next_id
        _commit_one(config, domain)
    return record


def update_record(config, zone: str, record_id: int, data: object) -> dict:
    """Replace one record's fields."""
    with apply.OP_LOCK:
        domain = get(config, zone)
        old = _find_record(domain, record_id)
        if not isinstance(data, dict):
            raise v.ValidationError("body", "must be a JSON object")
        merged = {"name": old["name"], "type": old["type"], "ttl": old["ttl"],
                  "priority": old["priority"], **data}
        if "value" not in data:
            raise v.ValidationError("value", "required")
        record = validate_record(domain["name"], {k: merged[k] for k in merged if k != "id"},
                                 record_id)
        domain["records"] = [record if r["id"] == record_id else r for r in domain["records"]]
        _commit_one(config, domain)
    return record


def delete_record(config, zone: str, record_id: int) -> None:
    """Remove one record."""
    with apply.OP_LOCK:
        domain = get(config, zone)
        _find_record(domain, record_id)
        domain["records"] = [r for r in domain["records"] if r["id"] != record_id]
        _commit_one(config, domain)


def _find_record(domain: dict, record_id: int) -> dict:
    """A record of domain by id."""
    for record in domain["records"]:
        if record["id"] == record_id:
            return record
    raise apply.NotFound("record", str(record_id))


def _commit_one(config, domain: dict) -> None:
    """Apply the node's domains with this one replaced."""
    _commit(config, [domain if d["name"] == domain["name"] else d for d in list_domains(config)])


def _commit(config, domains: list[dict]) -> apply.Result:
    """Apply, then store the domains with their new serials."""
    result = apply_domains(config, domains)
    apply.save_records(config, KIND, domains)
    return result
