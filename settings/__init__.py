"""Typed, validated stack settings: every key the program reads, its type, defaults and rules.

- `declarations`: each key (type, description, default per environment, rule);
- `loading`: reading each key, the rules between keys, and `load_settings`;
- `model`: the `Settings` the program gets, already checked.
"""

from settings.declarations import ENVIRONMENTS, PROJECT, SETTINGS, SETTINGS_BY_KEY, Setting, parse_ip_ranges
from settings.loading import SettingsError, load_settings, stack_file
from settings.model import Settings, SqlAdmin

__all__ = [
    "ENVIRONMENTS",
    "PROJECT",
    "SETTINGS",
    "SETTINGS_BY_KEY",
    "Setting",
    "Settings",
    "SettingsError",
    "SqlAdmin",
    "load_settings",
    "parse_ip_ranges",
    "stack_file",
]
