"""The whole broadcast system as one Pulumi component, the composition root above the building
blocks: `component` (`BroadcastSystem`), `args` (its typed arguments, generated from the settings'
declarations) and `schema` (the component package's schema, as the provider serves it).

It is the one place that reads both the settings (to validate its arguments with the stack
config's rules) and the building blocks in `components/`, which know neither.
"""
