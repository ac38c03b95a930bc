"""What the GitHub workflows run besides Pulumi: review stacks, drift reports, and the check that a
job can decrypt its stack's secrets before Pulumi runs.

`python -m pipeline.review_stack write|exists|sweep` writes `Pulumi.pr-<pr>.yaml` from
`Pulumi.review.yaml`, tells a missing review stack apart from a failed listing, and names the review
stacks whose pull request has closed; `python -m pipeline.drift <stack> <refresh.json>` turns
`pulumi refresh --preview-only --json` (or its failure) into the issue the drift workflow opens,
updates or closes; `python -m pipeline.stack_secrets <stack>` stops a job whose passphrase, token or
secrets provider is missing.
"""
