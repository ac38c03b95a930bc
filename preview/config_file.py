"""Which policy config a stack is judged with: `policies/config.<environment>.json`, the same file for
`make deploy` (the Pulumi CLI's `--policy-pack-config`) and for the offline `python -m preview`, so
both judge a stack alike."""

from __future__ import annotations

from pathlib import Path

POLICY_PACK = Path(__file__).resolve().parent.parent / "policies"


def environment_config(environment: str, pack: Path = POLICY_PACK) -> Path | None:
    """The pack's config for this environment, or None when the pack has none (its defaults apply)."""
    path = pack / f"config.{environment}.json"
    return path if path.is_file() else None
