"""Valid ranges of settings, declared beside the settings and checked when a config is built.

A config class lists its fields' ranges in a ``RANGES`` class attribute (``{field: Range(...)}``);
:func:`check_ranges` checks every one a class and its bases declare, so an out-of-range value is refused
where it is set (the Python API, ``--set``, a sweep spec) with a message naming the field, the range and
the value, instead of surfacing later as a hang, a NaN or a silent no-op.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Range:
    """A number's valid range: ``low``/``high`` bounds (``None``: unbounded), open or closed; ``integer``
    requires a whole number; ``optional`` admits ``None``; ``sizes`` makes it a tuple of layer widths."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False
    optional: bool = False
    sizes: bool = False

    def describe(self) -> str:
        if self.sizes:
            return "a tuple of integers ≥ 1 (layer widths)"
        kind = "an integer" if self.integer else "a number"
        if self.low is not None and self.high is not None:
            text = f"{kind} in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"
        elif self.low is not None:
            text = f"{kind} {'>' if self.low_open else '≥'} {self.low:g}"
        elif self.high is not None:
            text = f"{kind} {'<' if self.high_open else '≤'} {self.high:g}"
        else:
            text = f"a finite {kind.split()[-1]}"
        return text + (", or None" if self.optional else "")

    def admits(self, value: Any) -> bool:
        if value is None:
            return self.optional
        if self.sizes:
            return (isinstance(value, (tuple, list)) and len(value) > 0
                    and all(Range(1, integer=True).admits(v) for v in value))
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        if self.integer and not isinstance(value, int):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return not (self.high is not None and (value >= self.high if self.high_open else value > self.high))


POSITIVE = Range(0, low_open=True)
NON_NEGATIVE = Range(0)
COUNT = Range(1, integer=True)
STEPS = Range(0, integer=True)
FRACTION = Range(0, 1)
DISCOUNT = Range(0, 1, high_open=True)
SIZES = Range(sizes=True)


def check_ranges(config: Any, qualified: bool = True) -> None:
    """Refuse the first field of ``config`` outside the range its class (or a base) declares in ``RANGES``;
    the message names ``Class.field`` (``qualified``) or the field alone (options the user knows by name)."""
    ranges: dict[str, Range] = {}
    for cls in reversed(type(config).__mro__):
        ranges |= cls.__dict__.get("RANGES", {})
    for name, valid in ranges.items():
        value = getattr(config, name)
        if not valid.admits(value):
            field = f"{type(config).__name__}.{name}" if qualified else name
            raise ValueError(f"{field} must be {valid.describe()}, got {value!r}")


def check_choice(config: Any, name: str, choices) -> None:
    """Refuse a field whose value is not one of ``choices``, naming them."""
    value = getattr(config, name)
    if value not in choices:
        raise ValueError(f"{type(config).__name__}.{name} must be one of {list(choices)}, got {value!r}")


def check_ent_coef(config: Any, name: str = "ent_coef") -> None:
    """SAC's entropy coefficient: ``"auto"``, ``"auto_<initial value > 0>"`` or a number ≥ 0."""
    value = getattr(config, name)
    if isinstance(value, str):
        initial = value.partition("_")[2]
        ok = value == "auto" or (value.startswith("auto_") and _positive_number(initial))
    else:
        ok = NON_NEGATIVE.admits(value)
    if not ok:
        raise ValueError(f"{type(config).__name__}.{name} must be 'auto', 'auto_<initial value > 0>' or a number ≥ 0, "
                         f"got {value!r}")


def _positive_number(text: str) -> bool:
    try:
        return POSITIVE.admits(float(text))
    except ValueError:
        return False
