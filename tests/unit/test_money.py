"""usd(): dollar amounts keep enough significant digits to be read (and compared)."""

from __future__ import annotations

import pytest

from sutro_providers.money import usd


@pytest.mark.parametrize(("amount", "text"), [
    (1e-7, "0.0000001"), (1.2344e-7, "0.0000001234"), (0.0, "0.00"), (12.5, "12.50"), (0.0123456, "0.01235"),
    (1234.5678, "1234.57"), (3e-12, "0.000000000003"), (-0.5, "-0.50"), (0.1 + 0.2, "0.30"), (5.0, "5.00"),
])
def test_significant_digits_without_exponents(amount: float, text: str) -> None:
    assert usd(amount) == text


def test_different_amounts_read_differently() -> None:
    assert usd(1.00001e-7) == usd(1e-7) == "0.0000001"
    assert usd(1.00001e-7, distinct_from=1e-7) == "0.000000100001"
    assert usd(1e-7, distinct_from=1.00001e-7) == "0.0000001"
    assert usd(2.0, distinct_from=2.0) == "2.00"
