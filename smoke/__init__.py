"""`python -m smoke --url <site url> [--key <function key>]`: prove a deployment works end to end.

The site answers with its CSP and a config.json naming the API; a CORS preflight from the site's
origin is allowed; a client negotiates, connects to SignalR and hears presence; a uniquely marked
message published with the key reaches it over SignalR and is in history. One line per step with its
time; a failing step says what came back, and the command exits 1.
"""
