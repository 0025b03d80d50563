"""Service credits: the credit owed for a month's availability under the configured bands.

Every rule here is written out with a worked example in docs/formulas.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from sla.config import CreditBand


@dataclass(frozen=True, slots=True)
class CreditResult:
    """The credit owed in percent and the band that set it (None when no band applies)."""

    percent: float
    band: CreditBand | None


def service_credit(
    availability_ratio: Fraction | float | None, bands: Sequence[CreditBand]
) -> CreditResult | None:
    """The credit of the lowest band whose ``below`` the availability is strictly under.

    0 % when the availability is in no band; None when the availability is N/A. A float is
    taken as the decimal it prints as (0.999 is exactly 99.9 %, so not below a 99.9 band);
    pass a Fraction for the exact ratio.
    """
    if availability_ratio is None:
        return None
    ratio = (
        availability_ratio
        if isinstance(availability_ratio, Fraction)
        else Fraction(str(availability_ratio))
    )
    below = [band for band in bands if ratio * 100 < Fraction(str(band.below))]
    if not below:
        return CreditResult(0.0, None)
    band = min(below, key=lambda b: Fraction(str(b.below)))
    return CreditResult(band.credit, band)
