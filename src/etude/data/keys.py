"""Key finding by the Krumhansl-Schmuckler method: the key whose Krumhansl-Kessler profile
(probe-tone ratings; Krumhansl, "Cognitive Foundations of Musical Pitch", 1990) correlates best
with a pitch-class histogram. Shared by the measures of form (does the key hold) and the
sampler's key hold (keep it).

A key is an index 0-23: 0-11 C..B major, 12-23 C..B minor.
"""

from __future__ import annotations

import numpy as np

# Krumhansl-Kessler key profiles, C major and C minor (index: pitch class above the tonic).
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def key_of(weights_by_pc: np.ndarray) -> int:
    """Key index 0-23 whose profile correlates best with a pitch-class histogram (12,) of note
    durations or counts; -1 for an empty or flat one."""
    h = np.asarray(weights_by_pc, dtype=np.float64)
    if h.sum() <= 0 or h.std() == 0:
        return -1
    scores = [np.corrcoef(h, np.roll(profile, k))[0, 1] for profile in (KK_MAJOR, KK_MINOR) for k in range(12)]
    return int(np.argmax(scores))


def profile_of(key: int) -> np.ndarray:
    """The Krumhansl-Kessler profile (12,) of key 0-23, indexed by absolute pitch class."""
    return np.roll(KK_MINOR if key >= 12 else KK_MAJOR, key % 12)
