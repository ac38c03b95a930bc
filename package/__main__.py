"""The component provider of the `broadcast` package: hosts `BroadcastSystem` for programs in any
Pulumi language (`pulumi package add`, docs/package.md).

Pulumi's Python language host starts this file with the plugin's directory and the engine's address
as arguments; the provider answers `GetSchema` (inferred from the component's type hints by
`pulumi.provider.experimental`'s analyzer) and `Construct`. The component's code lives one directory
up, in the repository this package is cloned from, so it is put on the import path here: nothing
the component registers depends on the directory it runs in.
"""

import os
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
PACKAGE_NAME = "broadcast"


def main() -> None:
    """Serve the provider (the version is pyproject.toml's, the one a consumer's git tag names)."""
    sys.path.insert(0, str(REPOSITORY))
    # The component then refuses what only a Python program can deploy (system.component).
    os.environ["BROADCAST_PACKAGE_PROVIDER"] = "1"
    from pulumi.provider.experimental import component_provider_host

    from settings.version import project_version
    from system.component import BroadcastSystem

    component_provider_host([BroadcastSystem], name=PACKAGE_NAME, version=project_version())


if __name__ == "__main__":
    main()
