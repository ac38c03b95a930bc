"""The benchmark refuses a run the target's SignalR SKU cannot take (issue 16, item 6).

Limits: Microsoft Learn, "Azure SignalR Service limits" and pricing: Free_F1 20 concurrent
connections and 20,000 messages a day (a broadcast to N clients counts N, in 2 KB parts);
Standard_S1 and Premium_P1 1,000 concurrent connections per unit, no daily cap.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.capacity import Load, prod_size, refusal

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("sku", "units", "load", "reason"),
    [
        ("Free_F1", 1, Load(20, 300, 300), None),
        ("Free_F1", 1, Load(21, 1, 300), "Free_F1 holds 20 concurrent connections"),
        ("Free_F1", 1, Load(20, 1000, 300), "Free_F1 allows 20,000 a day"),
        ("Free_F1", 1, Load(10, 1000, 5000), "Free_F1 allows 20,000 a day"),  # 3 parts of 2 KB each
        ("Standard_S1", 1, Load(1000, 10_000, 300), None),
        ("Standard_S1", 1, Load(1001, 1, 300), "holds 1,000 concurrent connections"),
        ("Standard_S1", 2, Load(2000, 1, 300), None),
        ("Premium_P1", 3, Load(3001, 1, 300), "raise signalrUnits"),
        ("Basic_B1", 1, Load(1, 1, 1), "allowed Free_F1, Standard_S1, Premium_P1"),
        ("Standard_S1", 0, Load(1, 1, 1), "--signalr-units 0: allowed for Standard_S1: 1, 2"),
        ("Standard_S1", 15, Load(1, 1, 1), "--signalr-units 15: allowed"),
        ("Free_F1", 2, Load(1, 1, 1), "--signalr-units 2: allowed for Free_F1: 1"),
    ],
)
def test_what_each_sku_takes(sku: str, units: int, load: Load, reason: str | None) -> None:
    found = refusal(sku, units, load)
    if reason is None:
        assert found is None
    else:
        assert found is not None and reason in found


def test_presence_broadcasts_count_too() -> None:
    """Each connect and disconnect tells everyone connected: 20 clients cost 400 messages."""
    assert Load(20, 0, 100).messages() == 20 * 21 // 2 + 20 * 19 // 2 == 400


def test_the_command_refuses_before_connecting_anything() -> None:
    command = [sys.executable, "benchmarks/broadcast.py", "--url", "https://203.0.113.1", "--key", "k"]
    without_sku = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert without_sku.returncode == 2 and "--url needs --signalr-sku" in without_sku.stderr
    too_many = subprocess.run(
        [*command, "--signalr-sku", "Free_F1", "--clients", "50"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert too_many.returncode == 2 and "50 clients: Free_F1 holds 20" in too_many.stderr


@pytest.mark.parametrize(
    ("clients", "rate", "units", "over"),
    [
        (1_000, 1 / 60, 1, 440_000),  # one broadcast a minute: 1.44 M messages a day, 1 M included
        (1_000, 10, 5, 864_000_000 - 5_000_000),  # 10,000 outbound a second: five units' 2,000
        (10_000, 1 / 60, 10, 14_400_000 - 10_000_000),
        (10_000, 10, 50, 8_640_000_000 - 50_000_000),
        (100_000, 1 / 60, 100, 144_000_000 - 100_000_000),
        (100_000, 10, None, 86_400_000_000 - 100_000_000),  # 500 units: beyond one resource
    ],
)
def test_prod_size_takes_the_larger_of_connections_and_broadcast_rate(
    clients: int, rate: float, units: int | None, over: int
) -> None:
    size = prod_size(clients, rate)
    assert (size.signalr_units, size.over_included_per_day) == (units, over)
