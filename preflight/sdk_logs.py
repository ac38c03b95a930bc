"""The Azure SDK's own log lines, kept out of a command's answer.

`DefaultAzureCredential` logs every credential it tried, at WARNING, when none signs in (14 lines
when nothing is configured); Python's last-resort handler prints them to stderr before the command's
own one-line hint. The commands hide the `azure` loggers unless `--verbose` asks for them."""

from __future__ import annotations

import logging

AZURE_LOGGER = "azure"
HANDLER = "broadcast-verbose"


def configure(verbose: bool) -> None:
    """Quiet (the default): the `azure` loggers say nothing. Verbose: they log at INFO to stderr, with
    the logger's name, so a failed sign-in shows every credential tried and why."""
    logger = logging.getLogger(AZURE_LOGGER)
    for handler in [h for h in logger.handlers if h.get_name() == HANDLER]:
        logger.removeHandler(handler)
    if verbose:
        handler = logging.StreamHandler()  # sys.stderr, as it is when a line is written
        handler.set_name(HANDLER)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    else:
        logger.setLevel(logging.CRITICAL + 1)
