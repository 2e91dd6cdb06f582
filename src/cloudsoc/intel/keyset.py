"""A compact set of strings for the matcher's indexes: 64-bit fingerprints of the values instead of the values.

A dict of 10M indicator values holds ~110 B per value (the string object and its table slot), so a matcher of 10M
took 1.1 GB and a rebuild, which holds the old matcher until the new one is swapped in, 2.3 GB. A key set holds
~12–16 B per value:

- a sorted array of the values' hashes (8 B each);
- a bitmap of 16–32 bits per value (one bit set per value), whose single probe turns away ~95% of misses before
  any search, so a miss costs about what a dict probe did;
- the offsets of buckets of about four hashes in the array, so a search is two or three comparisons.

A fingerprint says "maybe": two different strings share one with probability ~n/2^64 (5e-13 for 10M values). The
matcher reads a hit's rows from the store by the value itself, so a false candidate reads no row and stays a miss.
The fingerprint is Python's string hash, which is salted per process: a key set is only ever asked in the process
that built it.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable

import numpy as np

# Bits of the bitmap per value (rounded up to a power of two): 16 keeps ~6% of misses for the search, at 2 B a value.
_BITS_PER_KEY = 16
# Hashes per bucket of the search's offsets (rounded): fewer means more offsets, each 4 B.
_KEYS_PER_BUCKET = 4


class KeySet:
    """Membership of strings by fingerprint; immutable once built."""

    __slots__ = ("_bits", "_keys", "_len", "_mask", "_offset", "_shift", "_starts")

    def __init__(self, hashes: array[int]) -> None:
        """``hashes``: ``hash(value)`` of every member (type code ``q``; repeats allowed)."""
        keys = np.unique(np.frombuffer(hashes, dtype=np.int64)) if len(hashes) else np.zeros(0, dtype=np.int64)
        n = len(keys)
        nbits = _pow2(max(64, n * _BITS_PER_KEY))
        bits = np.zeros(nbits // 8, dtype=np.uint8)
        np.bitwise_or.at(bits, (keys >> 3) & (nbits // 8 - 1), np.left_shift(1, keys & 7).astype(np.uint8))
        buckets = _pow2(max(2, n // _KEYS_PER_BUCKET))
        shift = 64 - buckets.bit_length() + 1
        # Hashes are signed: h >> shift lies in [-buckets/2, buckets/2), the offset makes it a bucket number.
        offset = buckets // 2
        starts = np.searchsorted((keys >> shift) + offset, np.arange(buckets + 1), side="left")
        self._bits = bits.tobytes()
        self._mask = nbits // 8 - 1
        self._keys = array("q", keys.tobytes())
        self._starts = array("I", starts.astype(np.uint32).tobytes())
        self._shift = shift
        self._offset = offset
        self._len = n

    @classmethod
    def of(cls, values: Iterable[str]) -> KeySet:
        return cls(array("q", map(hash, values)))

    def __contains__(self, value: object) -> bool:
        h = hash(value)
        if not (self._bits[(h >> 3) & self._mask] >> (h & 7)) & 1:
            return False
        bucket = (h >> self._shift) + self._offset
        hi = self._starts[bucket + 1]
        i = bisect_left(self._keys, h, self._starts[bucket], hi)
        return i < hi and self._keys[i] == h

    def __len__(self) -> int:
        return self._len

    @property
    def nbytes(self) -> int:
        """Memory held by the arrays."""
        return len(self._bits) + self._keys.itemsize * len(self._keys) + self._starts.itemsize * len(self._starts)


def _pow2(n: int) -> int:
    return 1 << (n - 1).bit_length()
