"""Instant one-to-many broadcasting on serverless Azure.

The data flow, as `BroadcastSystem` (system/component.py) builds it:
  1. the browser loads the web app from Blob Storage's static website;
  2. the web app asks the Functions app to negotiate a SignalR endpoint and token;
  3. it connects to Azure SignalR Service (Serverless mode);
  4. events (a published message, a client connecting) become rows in Azure SQL Database;
  5. a SQL trigger in the Functions app pushes each change through the SignalR output binding;
  6. SignalR pushes it to every connected client at once.

This program is the component's first consumer: the stack config is its arguments. The component
package (`package/`) offers the same component to TypeScript, YAML, Go and C# programs.
"""

import pulumi

from settings.arguments import stack_args
from system.component import BroadcastSystem

# Evaluating this program reads files and makes no network call: the preflight's ARM reads run in
# `python -m deploy` and `python -m preflight`, and the function package is built when it is deployed.
# A bad config key fails here, before anything is declared, naming the key and what it accepts.
system = BroadcastSystem("broadcast", stack_args())

pulumi.export("resourceGroupName", system.name)
pulumi.export("siteUrl", system.site_url)
pulumi.export("apiBaseUrl", system.api_base_url)
pulumi.export("functionAppName", system.function_app_name)
pulumi.export("signalrHostName", system.signalr_host_name)
pulumi.export("sqlServerFqdn", system.sql_server_fqdn)
pulumi.export("sqlDatabaseName", system.sql_database_name)
pulumi.export("logAnalyticsWorkspace", system.log_analytics_workspace)
# The key publishers send as x-functions-key: `pulumi stack output --show-secrets publishKey`.
pulumi.export("publishKey", system.publish_key)
