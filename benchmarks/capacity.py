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
