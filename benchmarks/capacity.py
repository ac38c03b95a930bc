"""What a benchmark run asks of the target's Azure SignalR Service, against what its SKU allows.

Limits from Microsoft Learn, "Azure SignalR Service limits" and the pricing page: Free_F1 holds
20 concurrent connections and 20,000 messages a day; Standard_S1 and Premium_P1 hold 1,000
concurrent connections per unit and have no daily cap. Outbound messages are what count: a
broadcast to N clients is N messages, and a message is counted in 2 KB parts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from settings.declarations import SIGNALR_SKUS, SIGNALR_UNITS

CONNECTIONS_PER_UNIT = 1000
FREE_CONNECTIONS = 20
FREE_MESSAGES_PER_DAY = 20_000
BILLED_MESSAGE_BYTES = 2048


@dataclass(frozen=True)
class Load:
    """One benchmark run: clients, broadcasts, and the size of each broadcast message."""

    clients: int
    broadcasts: int
    message_bytes: int

    def messages(self) -> int:
        """Messages SignalR counts: every broadcast to every client, in 2 KB parts, plus the
        presence broadcast to everyone connected after each connect and each disconnect."""
        parts = max(1, math.ceil(self.message_bytes / BILLED_MESSAGE_BYTES))
        presence = self.clients * (self.clients + 1) // 2 + self.clients * (self.clients - 1) // 2
        return self.broadcasts * self.clients * parts + presence


def refusal(sku: str, units: int, load: Load) -> str | None:
    """Why the SKU cannot take the load (a message naming the limit), or None when it can."""
    if sku not in SIGNALR_SKUS:
        return f"--signalr-sku {sku!r}: allowed {', '.join(SIGNALR_SKUS)}"
    # The stack settings' own rules for units, so that the run describes a stack that can exist.
    allowed_units = (1,) if sku == "Free_F1" else SIGNALR_UNITS
    if units not in allowed_units:
        return f"--signalr-units {units}: allowed for {sku}: {', '.join(map(str, allowed_units))}"
    if sku == "Free_F1":
        if load.clients > FREE_CONNECTIONS:
            return (
                f"{load.clients} clients: Free_F1 holds {FREE_CONNECTIONS} concurrent connections "
                f"(use --clients {FREE_CONNECTIONS} or fewer, or a Standard_S1 stack)"
            )
        if load.messages() > FREE_MESSAGES_PER_DAY:
            return (
                f"this run sends about {load.messages():,} SignalR messages; Free_F1 allows "
                f"{FREE_MESSAGES_PER_DAY:,} a day (fewer --messages, --burst or --clients)"
            )
        return None
    capacity = CONNECTIONS_PER_UNIT * units
    if load.clients > capacity:
        return (
            f"{load.clients} clients: {sku} with {units} unit(s) holds {capacity:,} concurrent connections "
            f"(raise signalrUnits or use fewer --clients)"
        )
    return None


BROADCAST_OUTBOUND_PER_UNIT = 2000
"""Azure SignalR's published broadcast capacity per Standard unit, outbound messages a second
(DESIGN.md, facts; the service's performance guide, "broadcast")."""
INCLUDED_MESSAGES_PER_UNIT_DAY = 1_000_000
"""Standard and Premium: messages a day included per unit; beyond them billed per million."""
MAX_UNITS = SIGNALR_UNITS[-1]


@dataclass(frozen=True)
class ProdSize:
    """What prod needs for a number of concurrent clients at a broadcast rate (capacity model)."""

    clients: int
    messages_per_second: float
    signalr_units: int | None
    """Standard units (an allowed count), or None beyond one resource's 100."""
    messages_per_day: int
    """Outbound messages SignalR counts: every broadcast to every client (1 KB messages)."""
    included_per_day: int

    @property
    def over_included_per_day(self) -> int:
        """Messages a day beyond the units' included ones (billed per million, unpriced here)."""
        return max(0, self.messages_per_day - self.included_per_day)


def prod_size(clients: int, messages_per_second: float) -> ProdSize:
    """SignalR units for `clients` connections and their broadcast rate: the larger of 1,000
    connections a unit and 2,000 outbound messages a second a unit, rounded up to a count Azure
    offers. SQL and Functions do not grow with clients here (one row and one REST broadcast per
    message, the SQL trigger's batch whatever the audience); only connect/disconnect events do."""
    outbound = clients * messages_per_second
    needed = max(
        math.ceil(clients / CONNECTIONS_PER_UNIT), math.ceil(outbound / BROADCAST_OUTBOUND_PER_UNIT), 1
    )
    units = next((u for u in SIGNALR_UNITS if u >= needed), None)
    return ProdSize(
        clients=clients,
        messages_per_second=messages_per_second,
        signalr_units=units,
        messages_per_day=round(outbound * 86_400),
        included_per_day=(units or MAX_UNITS) * INCLUDED_MESSAGES_PER_UNIT_DAY,
    )
