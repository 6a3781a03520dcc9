"""Database models, one module per menu area."""

from app.models.accounts import ApiToken, User, UserLevel
from app.models.certificates import Certificate, CertificateKind, CertificateState
from app.models.cluster import Desync, Node, NodeState, NodeStateChange, Policy
from app.models.operations import NodeOutcome, Operation, OperationNode, OperationStatus
from app.models.plans import Plan
from app.models.system import ListChange, SystemList
from app.models.userdata import (
    Counter,
    DatabaseIndex,
    DbUserIndex,
    DomainIndex,
    MailboxIndex,
    MailDomainIndex,
    NameOverride,
    PendingWrite,
    Placement,
    PlacementDecision,
    UserAccount,
    WebDomainAlias,
    WebDomainIndex,
)

__all__ = [
    "ApiToken",
    "Certificate",
    "CertificateKind",
    "CertificateState",
    "Counter",
    "DatabaseIndex",
    "DbUserIndex",
    "Desync",
    "ListChange",
    "DomainIndex",
    "MailboxIndex",
    "MailDomainIndex",
    "NameOverride",
    "Node",
    "NodeOutcome",
    "NodeState",
    "NodeStateChange",
    "Operation",
    "OperationNode",
    "OperationStatus",
    "PendingWrite",
    "Plan",
    "Placement",
    "PlacementDecision",
    "Policy",
    "SystemList",
    "User",
    "UserAccount",
    "UserLevel",
    "WebDomainAlias",
    "WebDomainIndex",
]
