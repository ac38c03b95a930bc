"""Resource names from the Cloud Adoption Framework abbreviations."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi


@dataclass(frozen=True, kw_only=True)
class Naming:
    """Azure resource names from the Cloud Adoption Framework abbreviations.

    Names are `<abbreviation>-<workload>-<environment>-<suffix>`; the suffix (random per stack)
    keeps globally unique names (storage, SignalR, SQL server, Functions app) from colliding.
    """

    workload: str
    environment: str
    suffix: pulumi.Input[str]

    def name(self, abbreviation: str) -> pulumi.Output[str]:
        """A hyphenated name, e.g. `sigr-bcast-dev-x7k2q9`."""
        return pulumi.Output.from_input(self.suffix).apply(
            lambda suffix: f"{abbreviation}-{self.workload}-{self.environment}-{suffix}"
        )

    def compact_name(self, abbreviation: str) -> pulumi.Output[str]:
        """A storage account name: 3-24 lowercase letters and digits, e.g. `stbcastdevx7k2q9`."""

        def build(suffix: str) -> str:
            name = f"{abbreviation}{self.workload}{self.environment}{suffix}".lower()
            if not (3 <= len(name) <= 24 and name.isalnum()):
                raise ValueError(f"storage account name {name!r} must be 3-24 lowercase letters and digits")
            return name

        return pulumi.Output.from_input(self.suffix).apply(build)
