"""The interface every component shares, and the resources every component creates the same way.

In the manner of Azure Verified Modules' shared interfaces, each component takes the same
`ComponentArgs` (resource group, location, naming, tags, role assignments keyed by a stable name,
diagnostics, lock, private access) and exposes the same `name` and `resource_id` outputs beside its
own. Role assignments, storage accounts, diagnostic settings, locks and private endpoints are built
here once, so every component makes them alike.
"""

from components.shared.diagnostics import send_diagnostics, send_storage_diagnostics
from components.shared.identity import (
    Deployer,
    Role,
    RoleAssignment,
    UserAssignedIdentity,
    assign_role,
    assign_roles,
    create_identity,
    role_assignment_name,
    role_definition_id,
)
from components.shared.interface import ComponentArgs, Diagnostics, PrivateAccess
from components.shared.locks import lock_against_deletion
from components.shared.naming import Naming
from components.shared.private_access import private_endpoint, resolvable_private_endpoint
from components.shared.storage import secure_storage_account

__all__ = [
    "ComponentArgs",
    "Deployer",
    "Diagnostics",
    "Naming",
    "PrivateAccess",
    "Role",
    "RoleAssignment",
    "UserAssignedIdentity",
    "assign_role",
    "assign_roles",
    "create_identity",
    "lock_against_deletion",
    "private_endpoint",
    "resolvable_private_endpoint",
    "role_assignment_name",
    "role_definition_id",
    "secure_storage_account",
    "send_diagnostics",
    "send_storage_diagnostics",
]
