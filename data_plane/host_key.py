"""Retired: the provider of the `FunctionHostKey` dynamic resources, kept so they leave state safely.

Until issue 33 the stack set two Functions host keys through ARM's "Web Apps - Create Or Update
Host Secret" with a Python dynamic resource: the `publisher` function key and the
`signalr_extension` system key. The host now keeps its keys in the app's Key Vault
(`AzureWebJobsSecretStorageType=keyvault`), where the program writes them as `keyvault.Secret`s
(components/functions_app.py), so nothing registers `FunctionHostKey` any more.

A stack deployed before that still holds two `FunctionHostKey` resources in its state, each with
this module's `HostKeyProvider` pickled by dill *by reference to this module* (the pickle holds the
class's import path, not its code). The next `pulumi up` deletes them, and Pulumi's dynamic provider
host unpickles that reference and runs the `delete` defined here, now. The old delete called ARM's
"Delete Host Secret", which the host answers by deleting the key from its store: with the keys in
Key Vault, it would soft-delete the very secrets the program just wrote (the publish key and the
key SignalR's upstream presents), and the next `pulumi up` would not notice. So `delete` is a no-op:
the keys it used to remove now belong to the `keyvault.Secret` resources, and the host's old copies
in its blob container are no longer read (the host reads one store, the one its settings name).

Module path and class name stay as they are (tests/test_layout.py pins them); `create` and `update`
refuse, since no program may register the resource again.
"""

from __future__ import annotations

from typing import Any

from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult

RETIRED = (
    "FunctionHostKey is retired (issue 33): the Functions host reads its keys from the app's Key Vault, "
    "where components/functions_app.py writes them as keyvault.Secret resources."
)


class HostKeyProvider(ResourceProvider):
    """The retired provider behind `FunctionHostKey`: deleting one from state calls nothing.

    Instances unpickled from an old state carry the old attributes (`_transport`, `_token`, ...);
    none of them is used here."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        raise RuntimeError(RETIRED)

    def diff(self, _id: str, _olds: dict[str, Any], _news: dict[str, Any]) -> DiffResult:
        return DiffResult(changes=False)

    def update(self, _id: str, _olds: dict[str, Any], _news: dict[str, Any]) -> UpdateResult:
        raise RuntimeError(RETIRED)

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing to do: the key lives on as a Key Vault secret of the app, which the program owns.
        Calling ARM here would make the host soft-delete that secret."""
