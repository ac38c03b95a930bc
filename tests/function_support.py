"""The function app's functions, indexed once (the SDK refuses to index an app twice)."""

from __future__ import annotations

import function_app

FUNCTIONS = {f.get_function_name(): f for f in function_app.app.get_functions()}
