"""What runs during `pulumi up` against Azure's data planes: Pulumi dynamic resources.

- `app_deployment`: builds the function package and publishes it with OneDeploy (standard library
  only), inside the deployment script of `components.code_deployment`;
- `code_deployment`, `site_upload`: retired providers (issue 33), kept importable with no-op deletes
  for stacks deployed before (their steps are deployment scripts now);
- `database_schema`: `DatabaseSchema` applies the T-SQL migrations with pyodbc and an Entra token;
- `migration_runner`: the runner itself (standard library only), which also runs inside a private
  stack's network, in the deployment script of `components.schema_runner`;
- `host_key`: `FunctionHostKey` sets the Functions host's `signalr_extension` system key through ARM;
- `azure_http`, `provider_support`: the HTTP, token and diff helpers they share.

Pulumi pickles each provider into the stack's state by reference to its module, and runs it in its
own process started in the project's directory: a provider's module path is part of what is
deployed (a test pins it), and Azure SDK imports happen inside the methods that use them.
"""
