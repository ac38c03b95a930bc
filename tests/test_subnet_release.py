"""The subnet release on destroy (issue 27, moved to pulumi-command by issue 33): the delete of a
`command:local:Command` deletes ACI's service association link and waits, within a bound, until the
subnet lists none, before the network's delete (Microsoft's support article "Failed to delete a
virtual network or subnet used by Azure Container Instances"; Azure/azure-cli#21637). Its script runs
here with bash against a fake `az` that answers as ARM does for one subnet."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

from components.schema_runner import ACI_API_VERSION, SUBNET_RELEASE_ATTEMPTS, subnet_release_command

SUBNET = (
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/vnet/subnets/snet-scripts"
)
FAKE_AZ = """#!/usr/bin/env python3
import json, os, sys
path = os.environ["ARM_STATE"]
state = json.load(open(path))
state["calls"].append(sys.argv[1:])
args = sys.argv[1:]
json.dump(state, open(path, "w"))
if state.get("signed_out"):
    sys.exit("ERROR: Please run 'az login' to setup account.")
if args[:4] == ["network", "vnet", "subnet", "show"]:
    if state["gone"]:
        sys.exit("ERROR: (NotFound) Resource not found")
    print(1 if state["lingering"] > 0 else 0)
    state["lingering"] -= 1 if state["deleted"] else 0
elif args[:2] == ["resource", "delete"]:
    state["deleted"] = True
json.dump(state, open(path, "w"))
"""


def release(tmp_path: Path, **arm: object) -> tuple[subprocess.CompletedProcess[str], dict[str, object]]:
    """Run the command's delete as pulumi-command would (interpreter bash -c, its environment)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    for name, text in (("az", FAKE_AZ), ("sleep", "#!/bin/sh\nexit 0\n")):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(stat.S_IRWXU)
    state = tmp_path / "arm.json"
    state.write_text(json.dumps({"calls": [], "gone": False, "lingering": 0, "deleted": False, **arm}))
    done = subprocess.run(
        ["/bin/bash", "-c", subnet_release_command()],
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "SUBNET_ID": SUBNET, "ARM_STATE": str(state)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done, json.loads(state.read_text())


def test_destroy_deletes_the_link_and_waits_until_the_subnet_lists_none(tmp_path: Path) -> None:
    done, arm = release(tmp_path, lingering=2)
    assert done.returncode == 0, done.stderr
    deletes = [call for call in arm["calls"] if call[:2] == ["resource", "delete"]]  # type: ignore[union-attr]
    assert deletes[0] == [
        "resource",
        "delete",
        "--ids",
        f"{SUBNET}/providers/Microsoft.ContainerInstance/serviceAssociationLinks/default",
        "--api-version",
        ACI_API_VERSION,
    ]
    assert len(deletes) == 3  # asked again each time the link still lingered


def test_a_free_subnet_or_one_already_gone_needs_nothing(tmp_path: Path) -> None:
    done, arm = release(tmp_path / "free")
    assert done.returncode == 0 and arm["calls"] == [
        [
            "network",
            "vnet",
            "subnet",
            "show",
            "--ids",
            SUBNET,
            "--query",
            "length(serviceAssociationLinks || `[]`)",
            "-o",
            "tsv",
        ]
    ]
    done, _ = release(tmp_path / "gone", gone=True)
    assert done.returncode == 0


def test_past_the_bound_destroy_fails_with_what_to_run(tmp_path: Path) -> None:
    done, arm = release(tmp_path, lingering=1000)
    assert done.returncode == 1
    assert "ACI still holds" in done.stderr and "az resource delete --ids" in done.stderr
    shows = [call for call in arm["calls"] if call[:2] == ["network", "vnet"]]  # type: ignore[union-attr]
    assert len(shows) == SUBNET_RELEASE_ATTEMPTS


def test_an_az_that_cannot_answer_fails_destroy_instead_of_guessing(tmp_path: Path) -> None:
    """pulumi-command runs the delete on the machine running `pulumi destroy`: without a signed-in
    `az` there, it fails with az's own message rather than letting the network's delete fail later."""
    done, _ = release(tmp_path, signed_out=True)
    assert done.returncode == 1 and "az login" in done.stderr
