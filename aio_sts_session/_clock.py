"""The one clock: wall time in seconds since the epoch.

Wall time, not monotonic time: a laptop that slept past an expiry must see it as expired on
waking, and credential expiries are wall-clock instants. Tests inject their own callable.
"""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], float]

system_clock: Clock = time.time
