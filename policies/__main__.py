"""The broadcast policy pack. This module only assembles it: constructing a PolicyPack starts the
analyzer server, so the rules live in `broadcast_policies` where tests import them directly."""

from broadcast_policies import ALL_POLICIES
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(name="broadcast-azure", enforcement_level=EnforcementLevel.MANDATORY, policies=ALL_POLICIES)
