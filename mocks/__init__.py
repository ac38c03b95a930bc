"""The Pulumi program under `pulumi.runtime.set_mocks`: what tests, benchmarks and the offline
policy check (`python -m preview`) all run it with.

`run_stack("dev")` runs `__main__.py` with `Pulumi.dev.yaml` and returns a `ProgramRun`: every
registered resource with its inputs, and the stack's exports. `mocks.azure` answers like ARM would.
"""

from mocks.azure import DEPLOYER_CLIENT_ID, DEPLOYER_OBJECT_ID, SUBSCRIPTION, TENANT, AzureMocks
from mocks.capture import ROOT, ProgramRun, Registration, run, run_stack

__all__ = [
    "DEPLOYER_CLIENT_ID",
    "DEPLOYER_OBJECT_ID",
    "ROOT",
    "SUBSCRIPTION",
    "TENANT",
    "AzureMocks",
    "ProgramRun",
    "Registration",
    "run",
    "run_stack",
]
