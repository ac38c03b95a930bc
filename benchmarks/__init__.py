"""Benchmarks: scripts that print figures (`broadcast.py`, `program.py`) and what they share."""
