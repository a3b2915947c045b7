"""arXiv's announcement calendar: which papers a day's listing holds, and which days have one.

arXiv announces on weekdays the papers submitted before the 14:00 (US Eastern) cutoff, and none
on weekends and its holidays; a paper submitted after the cutoff, on a weekend or a holiday is
announced on the next announcement day. Counting per announcement day keeps a weekend or a
holiday from looking like an empty feed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

CUTOFF_HOUR = 14  # US Eastern
TIMEZONE = "America/New_York"


def announcement_days(published: pd.Series, holidays: Sequence[str] = ()) -> np.ndarray:
    """The announcement day (`datetime64[D]`) of each publication moment (UTC timestamps)."""
    eastern = published.dt.tz_convert(TIMEZONE)
    day = eastern.dt.tz_localize(None).dt.normalize() + pd.to_timedelta(
        (eastern.dt.hour >= CUTOFF_HOUR).astype(int), unit="D"
    )
    return np.busday_offset(
        day.to_numpy(dtype="datetime64[D]"), 0, roll="forward", holidays=list(holidays)
    )


def announcement_day(moment: pd.Timestamp, holidays: Sequence[str] = ()) -> np.datetime64:
    """The announcement day of one moment (UTC)."""
    return announcement_days(pd.Series([moment]), holidays)[0]


def days_between(
    start: np.datetime64, end: np.datetime64, holidays: Sequence[str] = ()
) -> np.ndarray:
    """The announcement days in [start, end)."""
    every = np.arange(start, end, dtype="datetime64[D]")
    return every[np.is_busday(every, holidays=list(holidays))]
