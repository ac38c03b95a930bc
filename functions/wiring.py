"""Names both sides of a deployment agree on: the function bindings and the Pulumi program.

The Functions app component sets app settings under these keys, and the bindings in
`function_app.py` read them. Defining them once here means a rename cannot break only one side.
This module must stay import-free: it ships inside the function package.
"""

HUB_NAME = "broadcast"
"""The SignalR hub every client joins."""

NEW_MESSAGE_TARGET = "newMessage"
"""Client method invoked with each stored message."""

PRESENCE_TARGET = "presence"
"""Client method invoked with the online count."""

SIGNALR_CONNECTION_SETTING = "AzureSignalRConnectionString"
"""App setting prefix of the SignalR connection (identity-based: `__serviceUri`, `__credential`)."""

SQL_CONNECTION_SETTING = "SqlConnectionString"
"""App setting holding the Azure SQL connection string (managed identity, no password)."""

SQL_TRIGGER_POLLING_INTERVAL_SETTING = "Sql_Trigger_PollingIntervalMs"
SQL_TRIGGER_MAX_BATCH_SIZE_SETTING = "Sql_Trigger_MaxBatchSize"

MESSAGES_TABLE = "dbo.Messages"
CONNECTIONS_TABLE = "dbo.Connections"
MESSAGE_KEYS_TABLE = "dbo.MessageKeys"
"""Publisher-chosen keys claimed by a PUT before its message is written (migration 0007)."""

BROADCAST_MESSAGES_FUNCTION = "broadcast_messages"
BROADCAST_PRESENCE_FUNCTION = "broadcast_presence"
SQL_TRIGGERED_FUNCTIONS = (BROADCAST_MESSAGES_FUNCTION, BROADCAST_PRESENCE_FUNCTION)
"""Functions whose SQL triggers need an always-ready instance on Flex Consumption."""

SIGNALR_EXTENSION_KEY = "signalr_extension"
"""The Functions host system key that authorizes SignalR upstream calls to `/runtime/webhooks/signalr`."""

ACCEPTED_LOG = "accepted message"
"""The log line `<ACCEPTED_LOG> <key>` the publish function writes for each message it stores."""
BROADCAST_LOG = "broadcast message"
"""The log line `<BROADCAST_LOG> <key> as <id> lag <ms> ms` the broadcast function writes for each
message sent: the undelivered-messages alert matches it with ACCEPTED_LOG by key (word 2, counting from 0),
the broadcast-lag alert and the workbook read the lag (word 6), the smoke test its own message's."""
BROADCAST_LAG_TARGET_MS = 250
"""The service level: p95 of createdAt-to-send over 5 minutes at or under this (issue 28)."""

MESSAGE_RETENTION_DAYS_SETTING = "MessageRetentionDays"
"""App setting: messages older than this many days are deleted (0 keeps them all)."""

PRESENCE_CHECK_SCHEDULE = "0 * * * * *"
"""NCRONTAB (with seconds) of the presence check: at the start of every minute, so an open row
whose disconnect event was lost is closed within about a minute."""
PURGE_SCHEDULE = "0 17 * * * *"
"""NCRONTAB of the hourly housekeeping (minute 17, away from the top of the hour)."""
