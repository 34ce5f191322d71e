"""Repeated timings, summarised one way everywhere: min, median and max over the repeats."""

from __future__ import annotations

import statistics
from typing import Sequence


class Repeats:
    """min / median / max of ``self.times`` (one timing per repeat, in order; the subclass names the unit)."""

    times: Sequence[float]

    @property
    def min(self) -> float:
        return min(self.times)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def max(self) -> float:
        return max(self.times)
