"""Dollar amounts in messages and logs: cost estimates, limits, reported costs.

:func:`usd` prints enough significant digits for any amount (a limit of
``1e-7`` is ``0.0000001``, never ``0.0000``), without exponent notation; pass
``distinct_from`` to keep adding digits until two different amounts also read
differently ("0.00000012 is above 0.0000001").
"""

from __future__ import annotations

import math

SIGNIFICANT = 4
_MAX_DECIMALS = 20


def usd(amount: float, *, distinct_from: float | None = None, significant: int = SIGNIFICANT) -> str:
    """``amount`` with at least ``significant`` significant digits and two decimals
    (``12.50``, ``0.01235``, ``0.0000001``); trailing zeros past the cents are dropped.
    With ``distinct_from``, digits are added until the two amounts read differently
    (when they differ at all)."""
    text = _fixed(amount, significant)
    if distinct_from is not None and amount != distinct_from:
        while text == _fixed(distinct_from, significant) and significant < 17:
            significant += 1
            text = _fixed(amount, significant)
    return text


def _fixed(amount: float, significant: int) -> str:
    if amount == 0 or not math.isfinite(amount):
        return f"{amount:.2f}"
    decimals = min(max(2, significant - 1 - math.floor(math.log10(abs(amount)))), _MAX_DECIMALS)
    text = f"{amount:.{decimals}f}"
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.rstrip('0').ljust(2, '0')}"


__all__ = ["usd"]
