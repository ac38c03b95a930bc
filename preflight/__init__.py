"""What a subscription and a deploying machine need before `pulumi up` creates anything.

`checks` holds the rules (ARM reads and the local ODBC driver, each failure with the command that
fixes it); `python -m preflight <stack>` runs them, and `python -m deploy <stack>` runs them first.
The Pulumi program does not: evaluating it makes no network call.
"""
