"""The broadcast policy rules, one module per concern; `ALL_POLICIES` is what the pack enforces."""

from pulumi_policy import Policy

from . import general, keyvault, operations, signalr, sql, stack, storage, web

ALL_POLICIES: list[Policy] = [
    *storage.POLICIES,
    *web.POLICIES,
    *signalr.POLICIES,
    *sql.POLICIES,
    *keyvault.POLICIES,
    *general.POLICIES,
    *stack.POLICIES,
    *operations.POLICIES,
]
