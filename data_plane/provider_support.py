"""What the dynamic providers share: diffing on named inputs, and reading a file the plan hashed."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pulumi.dynamic import DiffResult


def diff_on(
    olds: Mapping[str, Any],
    news: Mapping[str, Any],
    watched: Iterable[str],
    replace_on: Iterable[str] = (),
    delete_before_replace: bool = False,
) -> DiffResult:
    """A change when a watched input differs; a replacement when a `replace_on` input does."""
    replaces = [key for key in replace_on if olds.get(key) != news.get(key)]
    changed = bool(replaces) or any(olds.get(key) != news.get(key) for key in watched)
    return DiffResult(changes=changed, replaces=replaces, delete_before_replace=delete_before_replace)


def read_planned(path: str, sha256: str) -> bytes:
    """The file's bytes, provided they are still those `pulumi preview` hashed."""
    data = Path(path).read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise RuntimeError(f"{path} changed after `pulumi preview`; run `pulumi up` again")
    return data
