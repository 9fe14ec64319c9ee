"""histogram_quantile must give what PromQL's histogram_quantile gives over the same buckets."""

from __future__ import annotations

import math

import pytest

from agent.quantile import histogram_quantile

INF = math.inf
# 100 observations: 10 <= 0.1, 50 <= 0.25, 90 <= 0.5, 99 <= 1, 100 <= +Inf
BUCKETS = [(0.1, 10.0), (0.25, 50.0), (0.5, 90.0), (1.0, 99.0), (INF, 100.0)]


@pytest.mark.parametrize(("q", "expected"), [
    # rank 50 lands on the top of the 0.25 bucket: 0.1 + 0.15 * (50-10)/(50-10)
    (0.5, 0.25),
    # rank 90 -> top of the 0.5 bucket
    (0.9, 0.5),
    # rank 99 -> top of the 1.0 bucket
    (0.99, 1.0),
    # rank 25 -> 0.1 + (0.25-0.1) * (25-10)/(50-10) = 0.15625
    (0.25, 0.15625),
    # rank 5 in the first bucket, which starts at 0: 0.1 * 5/10
    (0.05, 0.05),
    # rank 95 -> 0.5 + 0.5 * (95-90)/(99-90)
    (0.95, 0.5 + 0.5 * 5 / 9),
])
def test_quantile_interpolates_linearly_inside_the_bucket_like_promql(q: float, expected: float) -> None:
    assert histogram_quantile(q, BUCKETS) == pytest.approx(expected)


def test_rank_in_the_inf_bucket_returns_the_highest_finite_bound() -> None:
    # rank 99.5 > 99 (the 1.0 bucket): PromQL answers the last finite upper bound
    assert histogram_quantile(0.995, BUCKETS) == 1.0


def test_order_of_buckets_does_not_matter() -> None:
    assert histogram_quantile(0.25, list(reversed(BUCKETS))) == pytest.approx(0.15625)


def test_no_observations_no_inf_bucket_or_single_bucket_give_no_value() -> None:
    assert histogram_quantile(0.5, [(0.1, 0.0), (INF, 0.0)]) is None
    assert histogram_quantile(0.5, [(0.1, 3.0), (1.0, 5.0)]) is None
    assert histogram_quantile(0.5, [(INF, 5.0)]) is None
    assert histogram_quantile(0.5, []) is None


def test_quantiles_outside_zero_one_are_infinite_and_nan_is_none() -> None:
    assert histogram_quantile(-0.1, BUCKETS) == -INF
    assert histogram_quantile(1.1, BUCKETS) == INF
    assert histogram_quantile(math.nan, BUCKETS) is None


def test_non_monotonic_buckets_are_forced_monotonic_as_promql_does() -> None:
    # the 0.5 bucket dips below the 0.25 bucket (summing series scraped at different moments)
    buckets = [(0.25, 50.0), (0.5, 40.0), (1.0, 100.0), (INF, 100.0)]
    # after the fix 0.5 -> 50; rank 75 -> 0.5 + 0.5 * (75-50)/(100-50)
    assert histogram_quantile(0.75, buckets) == pytest.approx(0.75)


def test_duplicate_bounds_are_summed_like_coalesced_buckets() -> None:
    # two series' buckets: A has 2 observations <= 0.5, B has 2 above 0.5 -> 2 of 4 <= 0.5
    buckets = [(0.5, 2.0), (INF, 2.0), (0.5, 0.0), (INF, 2.0)]
    # rank 1 of 4 -> 0.5 * 1/2
    assert histogram_quantile(0.25, buckets) == pytest.approx(0.25)


def test_first_bucket_with_a_negative_bound_returns_that_bound() -> None:
    assert histogram_quantile(0.1, [(-1.0, 5.0), (0.0, 10.0), (INF, 10.0)]) == -1.0
