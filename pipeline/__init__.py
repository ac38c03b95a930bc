"""What the GitHub workflows run besides Pulumi: review stacks' stack files, and drift reports.

`python -m pipeline.review_stack <pr>` writes `Pulumi.pr-<pr>.yaml` from `Pulumi.review.yaml`;
`python -m pipeline.drift <stack> <refresh.json>` turns `pulumi refresh --preview-only --json` into
the issue the drift workflow opens, updates or closes.
"""
