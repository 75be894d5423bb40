"""The runnable checks behind ``failgeom verify``: one module per failure family.

A check computes one claim of the registry (:mod:`failgeom.claims`) exactly or matrix-free and
returns an :class:`Outcome`: what was computed, the headline value (with a 95% interval when it
is an estimate), whether the pass criterion held, and, where the claim holds with room, the
analytic margin. Every ingredient a check relies on (the formula under test, the claimed
constant, the step of a run) is a keyword argument with the true value as its default, so a test
can feed a falsified one and see the check fail (``tests/test_verify.py``).

Modules: :mod:`.parity` (Theorem 1, Lemma 3), :mod:`.orthogonal` (Theorem 2 and the talk's
landscape), :mod:`.decomposition` (Figure 2, Sec. 3.3), :mod:`.pwl` (Lemma 1, Lemma 2,
Theorem 3, Appendix A.6), :mod:`.regression` (Appendix A.5), :mod:`.flat` (Appendix A.7).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..training import Streams, seed_streams

#: One seed for every random choice of the checks, so that two runs print the same numbers.
SEED = 20170324


@dataclass
class Outcome:
    """What one check measured.

    Attributes
    ----------
    computed : str
        What was computed, at which sizes, with the numbers a reader needs.
    value : float
        The headline measured number.
    passed : bool
        Whether the criterion held.
    interval : tuple of float or None
        A 95% interval for ``value`` when it is an estimate.
    margin : str
        How much room the claim has (an analytic margin or the measured distance to the
        threshold), so that a reader knows how much a PASS proves.
    """

    computed: str
    value: float
    passed: bool
    interval: tuple[float, float] | None = None
    margin: str = ""

    def __post_init__(self):
        self.value, self.passed = float(self.value), bool(self.passed)


@dataclass(frozen=True)
class Check:
    """A runnable check: its id, its pass criterion and ``run(quick, **inputs) -> Outcome``."""

    id: str
    criterion: str
    run: Callable[..., Outcome]


def seed_sequence(*key) -> Streams:
    """The seed-stream node ``("verify", *key)`` (start the key with the check's id), for
    functions that take a seed; one node per use."""
    return seed_streams(SEED, "verify", *key)


def rng(*key) -> np.random.Generator:
    """The Generator of the stream ``("verify", *key)``; distinct keys, distinct streams."""
    return np.random.default_rng(seed_sequence(*key))


def fmt_slopes(slopes, k: int = 4) -> str:
    """The last ``k`` local slopes, three decimals each."""
    return ", ".join(f"{s:.3f}" for s in list(slopes)[-k:])


def all_checks() -> list[Check]:
    """Every check of every family module (in module order; ``verify`` orders them by claim)."""
    from . import decomposition, flat, orthogonal, parity, pwl, regression

    return [*parity.CHECKS, *orthogonal.CHECKS, *decomposition.CHECKS, *pwl.CHECKS,
            *regression.CHECKS, *flat.CHECKS]


__all__ = ["Check", "Outcome", "SEED", "all_checks", "fmt_slopes", "rng", "seed_sequence"]
