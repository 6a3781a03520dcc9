"""User data proxied to the node that holds it; the master keeps only an index (docs/user-data.md).

Every change is validated here with the agent's own validators, sent to the holding node's
agent (signed, pinned, with timeouts) and shown in the index only after the agent confirmed it.
A create first writes its index row as a claim (the name is unique in the index, so two creates
of one name cannot both reach a node) and clears the claim once the node confirms; a change or
delete writes a PendingWrite mark for the same window. A crash or timeout there leaves the claim
or mark behind and `reconcile_node` settles it from the agent's listing: the agent is the source
of truth.

The modules, each on the one below it: `errors` and `kinds`; `index` (what a user may see, claims,
pending marks); `proxy` (one call to the holding node); `owners` (the owner's hosting account, roles
and placement); `checks` (owner, limits, quota, names) and `records` (a zone's records); `crud`;
`reconcile` (after each poll) and `purge` (a user's deletion). This package re-exports their public
names, so `from app.services.userdata import create` is the way in.
"""

from app.services.userdata.checks import (
    check_disk_quota,
    check_limit,
    check_names,
    claim_aliases,
    index_aliases,
    override_asked,
    recheck_names,
    record_overrides,
    resolve_owner,
)
from app.services.userdata.crud import (
    LIST_OWNERS_MAX,
    create,
    delete,
    list_full,
    mail_node_addresses,
    show,
    update,
    zone_records_for,
)
from app.services.userdata.errors import (
    UserDataError,
    invalid,
    object_body,
    validated,
)
from app.services.userdata.index import (
    CLAIM_MARGIN_S,
    ClaimStatements,
    NewRow,
    begin_write,
    check_new_name,
    claim,
    claim_abandoned,
    confirm_claim,
    end_write,
    get_row,
    list_index,
    release_claim,
    settle_seconds,
    users_holding,
    visible,
)
from app.services.userdata.kinds import (
    CREATE_FIELDS,
    DB_KINDS,
    DISK_KINDS,
    KINDS,
    RECORD_FIELDS,
    UPDATE_FIELDS,
    Kind,
    key_of,
)
from app.services.userdata.owners import (
    held_account,
    holding_node,
)
from app.services.userdata.proxy import (
    agent_failure,
    call_agent,
    require_ready,
    send_change,
)
from app.services.userdata.reconcile import (
    FULL_RECONCILE_S,
    SETTLE_ONE_BY_ONE_MAX,
    owner_refusal,
    read_listings,
    reconcile_after_poll,
    reconcile_node,
    settle_claims,
)
from app.services.userdata.records import (
    add_record,
    delete_record,
    list_records,
    public_record,
    update_record,
)

__all__ = [
    "CLAIM_MARGIN_S",
    "CREATE_FIELDS",
    "ClaimStatements",
    "DB_KINDS",
    "DISK_KINDS",
    "FULL_RECONCILE_S",
    "KINDS",
    "Kind",
    "LIST_OWNERS_MAX",
    "NewRow",
    "RECORD_FIELDS",
    "SETTLE_ONE_BY_ONE_MAX",
    "UPDATE_FIELDS",
    "UserDataError",
    "add_record",
    "agent_failure",
    "begin_write",
    "call_agent",
    "check_disk_quota",
    "check_limit",
    "check_names",
    "check_new_name",
    "claim",
    "claim_abandoned",
    "claim_aliases",
    "confirm_claim",
    "create",
    "delete",
    "delete_record",
    "end_write",
    "get_row",
    "held_account",
    "holding_node",
    "index_aliases",
    "invalid",
    "key_of",
    "list_full",
    "list_index",
    "list_records",
    "mail_node_addresses",
    "object_body",
    "override_asked",
    "owner_refusal",
    "public_record",
    "read_listings",
    "recheck_names",
    "reconcile_after_poll",
    "reconcile_node",
    "record_overrides",
    "release_claim",
    "require_ready",
    "resolve_owner",
    "send_change",
    "settle_claims",
    "settle_seconds",
    "show",
    "update",
    "update_record",
    "users_holding",
    "validated",
    "visible",
    "zone_records_for",
]
