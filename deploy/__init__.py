"""`python -m deploy <stack>`: from a clone to a deployed, verified and priced stack in one command.

It drives the Pulumi CLI through the Automation API (`pulumi.automation`), so the CLI must be
installed (https://www.pulumi.com/docs/install/); it checks that first. Then: the stack's settings,
the signed-in Azure identity (which sets `deployerPrincipalType`), the preflight (each missing
prerequisite with its fix), the stack (selected, or created from `Pulumi.<stack>.yaml`), a preview
with the policy pack, `up` with its progress streamed, the smoke test with the stack's secret
`publishKey` output, and the monthly cost estimate. `--preview-only` stops after the preview,
`--yes` answers the confirmation (CI), `--destroy` removes the stack's resources, or, for a stack
that protects its data, prints the exact steps instead of leaving a half-destroyed stack.

- `steps`: the steps, in order, each failure naming the step and what to do;
- `automation`: the real tools (the Automation API, the Azure sign-in, the smoke test).
"""
