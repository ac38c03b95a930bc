"""`python -m cost <stack>`: what a stack costs a month, priced per resource from its settings.

- `prices`: the price lines, from the committed snapshot (`cost/prices.json`, offline and in tests) or
  from the Azure Retail Prices API (`--live`: public, no sign-in; the stack's region, one currency);
- `estimate`: the stack's settings as quantities times price lines, with the truths users miss (a
  serverless database the SQL trigger keeps resumed, always-ready instances billed around the clock,
  SignalR units, Log Analytics ingestion, what a review stack costs a day).
"""
