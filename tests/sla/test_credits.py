"""Service credits: the lowest band the availability falls below, compared exactly."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from sla.config import CreditBand
from sla.credits import CreditResult, service_credit

# docs/configuration.md: 99.5 <= a < 99.9 earns 5 %, 99.0 <= a < 99.5 10 %, below 99.0 25 %.
# Listed out of order: the lowest band wins wherever it is written.
BANDS = [
    CreditBand(below=99.5, credit=10),
    CreditBand(below=99.9, credit=5),
    CreditBand(below=99.0, credit=25),
]


def credit_of(availability: Fraction | float | None) -> float | None:
    result = service_credit(availability, BANDS)
    return None if result is None else result.percent


def test_availability_exactly_at_a_band_edge_is_not_below_it() -> None:
    # 0.999 is exactly 99.9 %: not below 99.9, so no credit. The binary float 0.999 is a hair
    # under 999/1000, which would wrongly earn 5 %; the ratio is taken as the decimal it prints.
    assert service_credit(0.999, BANDS) == CreditResult(0.0, None)
    # Exactly 99.5 %: not below 99.5 but below 99.9: 5 %. Exactly 99.0 %: 10 %.
    assert (credit_of(0.995), credit_of(0.99)) == (5, 10)


def test_just_under_an_edge_earns_that_band() -> None:
    # 99.8999 % < 99.9: 5 %. 98.9999 % < 99.0, the lowest band it falls below: 25 %.
    assert credit_of(0.998999) == 5
    result = service_credit(0.989999, BANDS)
    assert result == CreditResult(25, CreditBand(below=99.0, credit=25))


def test_exact_fractions_from_seconds() -> None:
    # 601,200 s agreed, 601.2 s down would be exactly 99.9 %; with 602 s down the availability is
    # 600,598 / 601,200 = 99.8999 %: below 99.9 by a fraction of a second, 5 % credit.
    assert credit_of(Fraction(601_200 - 602, 601_200)) == 5
    assert credit_of(Fraction(999, 1000)) == 0


def test_full_availability_no_bands_and_not_applicable() -> None:
    assert credit_of(1.0) == 0
    assert service_credit(0.5, []) == CreditResult(0.0, None)
    # N/A availability (no agreed service time): no credit figure at all, not 0 %.
    assert service_credit(None, BANDS) is None


@st.composite
def consistent_bands(draw: st.DrawFn) -> list[CreditBand]:
    """Bands whose credit grows as `below` falls, as the config requires."""
    belows = draw(st.lists(st.integers(1, 1000), min_size=1, max_size=5, unique=True))
    credits = sorted(
        draw(st.lists(st.integers(1, 100), min_size=len(belows), max_size=len(belows)))
    )
    return [
        CreditBand(below=below / 10, credit=credit)
        for below, credit in zip(sorted(belows, reverse=True), credits, strict=True)
    ]


@given(
    consistent_bands(),
    st.fractions(min_value=0, max_value=1),
    st.fractions(min_value=0, max_value=1),
)
def test_credit_never_grows_with_availability(
    bands: list[CreditBand], a: Fraction, b: Fraction
) -> None:
    low, high = sorted((a, b))
    low_credit, high_credit = service_credit(low, bands), service_credit(high, bands)
    assert low_credit is not None and high_credit is not None
    assert low_credit.percent >= high_credit.percent
