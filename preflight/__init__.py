"""What a subscription and a deploying machine need before `pulumi up` creates anything.

`checks` holds the rules (ARM reads and the local ODBC driver, each failure with the command that
fixes it); the program runs them first (`preflight.program.verify`), and `python -m preflight
<stack>` runs them on their own, as the deploy workflow does before `pulumi up`.
"""
