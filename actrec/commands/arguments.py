"""The values the command line takes, each refused in one line (argparse's `error: argument --x: ...`)."""

from __future__ import annotations

import argparse
import math
import re

from actrec.inference.inputs import Span


def span(text: str) -> Span:
    """A window or stride: a whole number of frames ('16') or a finite number of seconds ('4s')."""
    try:
        return Span.parse(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def positive(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 1_000_000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1 to 1000000")
    return int(text)


def port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (1 to 65535)")
    return int(text)


def seconds(text: str) -> float:
    """A finite, positive number (of seconds, or of frames per second)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not 0 < value <= 86_400:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number above 0 and at most 86400")
    return value


def size(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]?)B?\s*", text.upper())
    if not match or float(match[1]) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size such as 100MB, 1.5GB or 500KB")
    return int(float(match[1]) * 1024 ** " KMG".index(match[2] or " "))
