"""The building blocks of the broadcast system, one Pulumi component each, and the interface they share.

| module | component | Azure resources |
|---|---|---|
| `static_site` | `StaticSite` | the storage account whose static website serves `site/` |
| `app_service` | `HostingPlan` | the App Service plan (Flex Consumption by default) |
| `functions_app` | `FunctionApp` | the Functions app, its host storage, monitoring and code |
| `signalr` | `SignalR` | Azure SignalR Service in Serverless mode |
| `sql` | `SqlDatabase` | the Entra-only SQL server, database, firewall and schema |
| `shared` | (none) | naming, common args, identity, role assignments, storage accounts |

Components never read stack settings: the program translates settings into their args. What runs
against Azure's data planes during `pulumi up` lives in `data_plane/`; what builds the artifacts
they ship, in `artifacts/`.
"""
