"""The CJ demo's session design: balanced rounds, verbatim replicates, seeded abilities."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from demos.cj_demo.design import balanced_rounds, make_design, true_abilities


@pytest.fixture(scope="module")
def design():
    return make_design()


def test_default_counts(design):
    assert design.essay_ids == tuple(f"E{i:02d}" for i in range(1, 31))
    assert design.n_essays == 30
    assert len(design.pairings) == 225
    assert [p.index for p in design.pairings] == list(range(225))
    appearances = Counter(
        itertools.chain.from_iterable((p.essay_a, p.essay_b) for p in design.pairings)
    )
    assert set(appearances.values()) == {15}
    assert len(design.replicate_pairs) == 75
    assert (design.sigma, design.seed, design.new_rounds, design.repeat_rounds) == (
        1.5,
        20261206,
        10,
        5,
    )


def test_every_essay_once_per_round(design):
    rounds = design.rounds()
    assert len(rounds) == 15
    for number, pairings in enumerate(rounds):
        assert {p.round for p in pairings} == {number}
        essays = [e for p in pairings for e in (p.essay_a, p.essay_b)]
        assert sorted(essays) == list(range(30))


def test_no_pair_repeats_among_new_rounds(design):
    new = [(p.essay_a, p.essay_b) for p in design.pairings if p.replicate_of is None]
    assert len(new) == 150
    assert len(set(new)) == 150


def test_repeat_rounds_repeat_the_first_rounds_verbatim(design):
    rounds = design.rounds()
    for repeat in range(5):
        originals, replicates = rounds[repeat], rounds[10 + repeat]
        assert [(p.essay_a, p.essay_b) for p in replicates] == [
            (p.essay_a, p.essay_b) for p in originals
        ]
        assert [p.replicate_of for p in replicates] == [p.index for p in originals]
    assert design.replicate_pairs == [
        (p.replicate_of, p.index) for p in design.pairings if p.replicate_of is not None
    ]
    assert all(p.replicate_of is None for p in design.pairings[:150])


def test_caller_sends_the_lower_id_first(design):
    assert all(p.essay_a < p.essay_b for p in design.pairings)
    a, b = design.caller_order()
    assert a.tolist() == [p.essay_a for p in design.pairings]
    assert b.tolist() == [p.essay_b for p in design.pairings]


def test_abilities_are_shuffled_centred_normal_quantiles(design):
    expected = 1.5 * stats.norm.ppf((np.arange(1, 31) - 0.5) / 30)
    np.testing.assert_allclose(np.sort(design.theta), expected, atol=1e-12)
    assert abs(design.theta.mean()) < 1e-12
    # Shuffled over ids: not in ability order.
    assert not np.all(np.diff(design.theta) > 0)
    with pytest.raises(ValueError, match="read-only"):
        design.theta[0] = 0.0


def test_same_seed_same_design_and_other_seed_differs():
    one, two, other = make_design(seed=7), make_design(seed=7), make_design(seed=8)
    assert one.pairings == two.pairings
    np.testing.assert_array_equal(one.theta, two.theta)
    assert one.pairings != other.pairings
    assert not np.array_equal(one.theta, other.theta)


def test_a_small_design():
    small = make_design(n_essays=4, new_rounds=3, repeat_rounds=1, seed=1)
    assert len(small.pairings) == 8
    assert len({(p.essay_a, p.essay_b) for p in small.pairings}) == 6  # every pair of 4 once
    assert small.replicate_pairs == [(0, 6), (1, 7)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_essays": 31}, "even"),
        ({"n_essays": 0}, "even"),
        ({"repeat_rounds": 11}, "repeat_rounds"),
        ({"repeat_rounds": -1}, "repeat_rounds"),
        ({"new_rounds": 30, "repeat_rounds": 0}, "rounds"),
        ({"new_rounds": 0, "repeat_rounds": 0}, "rounds"),
        ({"sigma": 0.0}, "sigma"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_design(**kwargs)


def test_true_abilities_rejects_bad_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="sigma"):
        true_abilities(10, -1.0, rng)
    with pytest.raises(ValueError, match="n >= 2"):
        true_abilities(1, 1.0, rng)


def test_the_full_round_robin_is_reachable():
    rounds = balanced_rounds(30, 29, np.random.default_rng(3))
    pairs = [pair for r in rounds for pair in r]
    assert sorted(pairs) == list(itertools.combinations(range(30), 2))


@settings(max_examples=40, deadline=None)
@given(
    half=st.integers(min_value=1, max_value=20),
    share=st.floats(min_value=0.0, max_value=1.0),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_balanced_rounds_are_disjoint_perfect_matchings(half, share, seed):
    n = 2 * half
    count = 1 + round(share * (n - 2))
    rounds = balanced_rounds(n, count, np.random.default_rng(seed))
    assert len(rounds) == count
    seen: set[tuple[int, int]] = set()
    for pairs in rounds:
        assert sorted(e for pair in pairs for e in pair) == list(range(n))
        assert all(i < j for i, j in pairs)
        assert seen.isdisjoint(pairs)
        seen.update(pairs)
