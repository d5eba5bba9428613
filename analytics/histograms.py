"""Mergeable log-bucket histograms for latency (ms) and throughput (tokens/s).

Bucket b > 0 holds values in [G**(b-OFFSET), G**(b-OFFSET+1)) with G = 1.08, so its geometric
midpoint is within 4% of any value in it; histograms of any hours, days or endpoints merge by
adding counts, and a percentile read from the merged counts is within 5% of the exact one.
"""
import math
from collections.abc import Mapping

GROWTH = 1.08
OFFSET = 90  # bucket 1 starts at 1.08**-89 ~ 0.001
MAX_BUCKET = OFFSET + 210  # 1.08**210 ~ 1.06e7
_LOG_GROWTH = math.log(GROWTH)


def bucket_of(value: float) -> int:
    """The bucket of a value; 0 for zero or negative values, clamped at both ends."""
    if value is None or value <= 0 or value != value:
        return 0
    bucket = math.floor(math.log(value) / _LOG_GROWTH) + OFFSET
    return min(max(bucket, 1), MAX_BUCKET)


def value_of(bucket: int) -> float:
    """The representative (geometric midpoint) value of a bucket."""
    if bucket <= 0:
        return 0.0
    return GROWTH ** (bucket - OFFSET + 0.5)


def percentile(counts: Mapping[int, int], q: float) -> float | None:
    """Nearest-rank percentile q (0-1) of the values behind the bucket counts; None when empty."""
    total = sum(counts.values())
    if total <= 0:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for bucket in sorted(counts):
        seen += counts[bucket]
        if seen >= rank:
            return value_of(bucket)
    return value_of(max(counts))
