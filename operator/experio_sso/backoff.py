"""Exponential backoff with jitter, shared by the work queue, sidecar health and watches."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Delays in seconds between attempts after consecutive failures.

    The n-th consecutive failure (n >= 1) waits ``min(maximum, initial * factor**(n-1))``,
    scaled by a random factor in [0.5, 1.0] so that many callers failing together spread out.
    """

    initial: float = 1.0
    maximum: float = 60.0
    factor: float = 2.0

    def delay(self, failures: int) -> float:
        """Return the delay after ``failures`` consecutive failures."""
        try:
            growth = self.factor ** max(failures - 1, 0)
        except OverflowError:
            # 2.0 ** 1024 overflows a float: about 17 hours of failures at a 60-second maximum.
            growth = math.inf
        ceiling = min(self.maximum, self.initial * growth)
        return ceiling * random.uniform(0.5, 1.0)
