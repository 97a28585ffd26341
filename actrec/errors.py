"""What a user sees when something is wrong: one clear line and a non-zero exit, no traceback.

Every error the pipeline raises on purpose (bad params, a missing dataset, unusable features,
an output that cannot be written) derives from ActrecError; `run_main` turns those into one line
on stderr and exit code 2, and leaves tracebacks for real bugs.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable


class ActrecError(RuntimeError):
    """An error in the user's input or environment, explained by its message."""


class OneLineFormatter(logging.Formatter):
    """Each log record on one line: a newline in a message (a file name holding one) is written escaped."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return one_line(super().formatMessage(record))


def one_line(text: str) -> str:
    return text.replace("\r", "\\r").replace("\n", "\\n")


def first_line(err: BaseException, limit: int = 160) -> str:
    """An error's first line, cut to `limit` characters, or its type's name where it says nothing: libraries
    (FFmpeg, decord, torch, OpenVINO) put whole reports and tracebacks of their own in a message, and a user's
    line or a report's column needs only what went wrong."""
    text = str(err).strip()
    return text.splitlines()[0][:limit] if text else type(err).__name__


def run_main(main: Callable[[], None]) -> None:
    """Entry point of every stage and command: logging set up, user errors reported plainly."""
    handler = logging.StreamHandler()
    handler.setFormatter(OneLineFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    try:
        main()
    except ActrecError as err:
        print(f"error: {one_line(str(err))}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
