"""Amounts of money: each currency's decimal scale, and checking an amount against it."""

from __future__ import annotations

from decimal import Context, Decimal, Inexact, InvalidOperation

from azora_nexus.domain.ledger.models import Currency
from azora_nexus.errors import Invalid

# Places after the point each currency allows (USD cents, satoshis, wei).
SCALE: dict[Currency, int] = {
    Currency.USD: 2,
    Currency.BTC: 8,
    Currency.ETH: 18,
    Currency.AZR: 18,
}

# NUMERIC(38, 18) holds at most 20 digits before the point.
MAX_INTEGER_DIGITS = 20

# Arithmetic on money never rounds: 60 digits cover NUMERIC(38, 18) sums with room to spare,
# and an inexact result raises instead of silently losing a wei.
MONEY_CONTEXT = Context(prec=60, traps=[Inexact, InvalidOperation])


def money_sum(amounts: list[Decimal]) -> Decimal:
    """The exact sum of `amounts`."""
    total = Decimal(0)
    for amount in amounts:
        total = MONEY_CONTEXT.add(total, amount)
    return total


def places(amount: Decimal) -> int:
    """How many places after the point `amount` needs (trailing zeros do not count)."""
    # From the digits, not normalize(): that rounds to the context's 28 digits, which would
    # hide the 19th place of a 20-digit amount.
    _, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int)
    significant = "".join(map(str, digits)).rstrip("0")
    if not significant:
        return 0
    return max(0, -(exponent + len(digits) - len(significant)))


def parse_amount(value: Decimal | str, currency: Currency, *, field: str = "amount") -> Decimal:
    """A positive, finite amount within `currency`'s scale; Invalid (422) for anything else."""
    try:
        amount = Decimal(value)
    except InvalidOperation as exc:
        raise Invalid(f"{field}: not a decimal number") from exc
    if not amount.is_finite() or amount <= 0:
        raise Invalid(f"{field}: must be a positive decimal")
    if places(amount) > SCALE[currency]:
        raise Invalid(f"{field}: {currency} allows at most {SCALE[currency]} decimal places")
    if amount.adjusted() >= MAX_INTEGER_DIGITS:
        raise Invalid(f"{field}: too large")
    return amount


def format_amount(amount: Decimal, currency: Currency) -> str:
    """`amount` as the wire's decimal string, with exactly the currency's places."""
    return format(MONEY_CONTEXT.quantize(amount, Decimal(1).scaleb(-SCALE[currency])), "f")
