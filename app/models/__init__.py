"""Database models, one module per menu area."""

from app.models.accounts import ApiToken, User, UserLevel
from app.models.cluster import Desync, Node, NodeState, NodeStateChange, Policy
from app.models.operations import Operation, OperationNode, OperationStatus, NodeOutcome

__all__ = [
    "ApiToken",
    "Desync",
    "Node",
    "NodeOutcome",
    "NodeState",
    "NodeStateChange",
    "Operation",
    "OperationNode",
    "OperationStatus",
    "Policy",
    "User",
    "UserLevel",
]
