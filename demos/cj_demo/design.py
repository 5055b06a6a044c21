"""The session design of the CJ demo: essays, true abilities and the schedule of pairings."""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from numpy.typing import NDArray

DEFAULT_SEED = 20261206


@dataclass(frozen=True, slots=True)
class Pairing:
    """One request of the session, in the caller's terms.

    `essay_a` < `essay_b` always: the caller sends the lower essay id first, a naive order that
    is independent of ability because abilities are shuffled over ids.
    """

    index: int  # position in the session, 0-based
    essay_a: int  # the caller's essay_a, an item index 0..n-1 (the lower id)
    essay_b: int
    round: int  # 0-based
    replicate_of: int | None  # index of the pairing this one repeats, or None


# eq=False: the generated __eq__ would compare numpy arrays, which has no truth value.
@dataclass(frozen=True, eq=False)
class Design:
    """A fixed CJ session: item i is the essay `essay_ids[i]` with true ability `theta[i]`.

    `theta` is centred and read-only. The first `new_rounds` rounds are perfect matchings with no
    pair repeated; the `repeat_rounds` after them repeat rounds 0.. verbatim (same pairs, same
    caller order), so every pairing in them has `replicate_of` set.
    """

    essay_ids: tuple[str, ...]
    theta: NDArray[np.float64]
    pairings: tuple[Pairing, ...]
    sigma: float
    seed: int
    new_rounds: int
    repeat_rounds: int

    @property
    def n_essays(self) -> int:
        return len(self.essay_ids)

    @property
    def replicate_pairs(self) -> list[tuple[int, int]]:
        """(original index, replicate index) for every repeated pairing, in session order."""
        return [(p.replicate_of, p.index) for p in self.pairings if p.replicate_of is not None]

    def caller_order(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """(essay_a, essay_b) of every pairing, as item-index arrays in session order."""
        a = np.array([p.essay_a for p in self.pairings], dtype=np.int64)
        return a, np.array([p.essay_b for p in self.pairings], dtype=np.int64)

    def rounds(self) -> list[list[Pairing]]:
        """The pairings grouped by round, in round order."""
        grouped: list[list[Pairing]] = [[] for _ in range(self.new_rounds + self.repeat_rounds)]
        for pairing in self.pairings:
            grouped[pairing.round].append(pairing)
        return grouped


def true_abilities(n: int, sigma: float, rng: np.random.Generator) -> NDArray[np.float64]:
    """Normal quantiles sigma·Φ⁻¹((i - 0.5)/n), i = 1..n, shuffled over items and centred.

    Quantiles rather than draws: every design has the same spread of abilities, so sessions
    differ only in who holds which ability and in the judgements.
    """
    if n < 2 or sigma <= 0:
        raise ValueError(f"need n >= 2 and sigma > 0, got n={n}, sigma={sigma}")
    normal = NormalDist()
    quantiles = np.array([sigma * normal.inv_cdf((i - 0.5) / n) for i in range(1, n + 1)])
    theta = rng.permutation(quantiles)
    return np.asarray(theta - theta.mean(), dtype=np.float64)


def balanced_rounds(n: int, rounds: int, rng: np.random.Generator) -> list[list[tuple[int, int]]]:
    """`rounds` random perfect matchings of items 0..n-1, no pair in two of them.

    Each pair is (i, j) with i < j. The rounds are drawn from the circle-method round robin
    (n - 1 disjoint perfect matchings) under a random relabelling of the items, so each round
    is a uniformly random perfect matching and any 1 <= rounds <= n - 1 succeeds, where
    matching greedily at random can dead-end. Raises `ValueError` for odd n or too many rounds.
    """
    if n < 2 or n % 2:
        raise ValueError(f"need an even number of essays >= 2, got {n}")
    if not 1 <= rounds <= n - 1:
        raise ValueError(
            f"{n} essays allow 1..{n - 1} rounds without a repeated pair, got {rounds}"
        )
    label = rng.permutation(n)
    chosen = rng.permutation(n - 1)[:rounds]
    schedule = []
    for r in chosen:
        # Circle method: item n-1 stays fixed, the others rotate by r.
        slots = [n - 1, *[(r + k) % (n - 1) for k in range(n - 1)]]
        pairs = [(int(label[slots[k]]), int(label[slots[n - 1 - k]])) for k in range(n // 2)]
        pairs = [(min(pair), max(pair)) for pair in pairs]
        order = rng.permutation(len(pairs))
        schedule.append([pairs[k] for k in order])
    return schedule


def make_design(
    *,
    n_essays: int = 30,
    new_rounds: int = 10,
    repeat_rounds: int = 5,
    sigma: float = 1.5,
    seed: int = DEFAULT_SEED,
) -> Design:
    """The default design: 30 essays, 10 new rounds, 5 repeated, 225 pairings, seeded.

    Raises `ValueError` for an odd or too small `n_essays`, `new_rounds` outside
    1..n_essays - 1, `repeat_rounds` outside 0..new_rounds, or `sigma` <= 0.
    """
    if n_essays < 2 or n_essays % 2:
        raise ValueError(f"need an even number of essays >= 2, got {n_essays}")
    if not 0 <= repeat_rounds <= new_rounds:
        raise ValueError(f"repeat_rounds must be in 0..new_rounds, got {repeat_rounds}")
    rng = np.random.default_rng(seed)
    theta = true_abilities(n_essays, sigma, rng)
    theta.setflags(write=False)
    schedule = balanced_rounds(n_essays, new_rounds, rng)
    pairings: list[Pairing] = []
    for round_no, pairs in enumerate(schedule):
        for a, b in pairs:
            pairings.append(Pairing(len(pairings), a, b, round_no, None))
    per_round = n_essays // 2
    for repeat in range(repeat_rounds):
        for original in pairings[repeat * per_round : (repeat + 1) * per_round]:
            index = len(pairings)
            round_no = new_rounds + repeat
            pairings.append(
                Pairing(index, original.essay_a, original.essay_b, round_no, original.index)
            )
    width = max(2, len(str(n_essays)))
    return Design(
        essay_ids=tuple(f"E{i + 1:0{width}d}" for i in range(n_essays)),
        theta=theta,
        pairings=tuple(pairings),
        sigma=sigma,
        seed=seed,
        new_rounds=new_rounds,
        repeat_rounds=repeat_rounds,
    )
