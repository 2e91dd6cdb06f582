"""Seeded identifiers in the shapes the clouds use (event ids, request ids, AccessKey ids, principal ids)."""

from __future__ import annotations

import random

_DIGITS = "0123456789"
_LOWER_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
# AWS key and unique ids are base32: upper letters and the digits 2-7.
_AWS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_UPPER_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

# uuid4 bit masks (version nibble and RFC 4122 variant), applied to a 128-bit random number.
_VERSION_CLEAR = ~(0xF000 << 64)
_VERSION_4 = 0x4000 << 64
_VARIANT_CLEAR = ~(0xC000 << 48)
_VARIANT_RFC = 0x8000 << 48
# The variant nibble of a uuid4 is 8, 9, a or b: the two high bits of the random nibble are replaced by 10.
_VARIANT_NIBBLE = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


class IdFactory:
    """Makes ids from one seeded :class:`random.Random`; never the global random, never the clock."""

    __slots__ = ("rng",)

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def uuid4(self) -> str:
        """Same text as ``str(uuid.UUID(int=rng.getrandbits(128), version=4))``, about 3x faster."""
        x = (self.rng.getrandbits(128) & _VERSION_CLEAR & _VARIANT_CLEAR) | _VERSION_4 | _VARIANT_RFC
        h = f"{x:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def uuid4_batch(self, n: int) -> list[str]:
        """``n`` uuid4 strings from one draw of ``128 * n`` random bits (for bulk writers)."""
        if n <= 0:
            return []
        h = f"{self.rng.getrandbits(128 * n):0{32 * n}x}"
        v = _VARIANT_NIBBLE
        out = []
        for i in range(0, 32 * n, 32):
            s = h[i : i + 32]
            out.append(f"{s[:8]}-{s[8:12]}-4{s[13:16]}-{v[s[16]]}{s[17:20]}-{s[20:]}")
        return out

    def uuid4_upper(self) -> str:
        """Alibaba Cloud writes request and event ids as upper-case UUIDs."""
        return self.uuid4().upper()

    def chars(self, alphabet: str, n: int) -> str:
        return "".join(self.rng.choices(alphabet, k=n))

    def digits(self, n: int, first: str = "123456789") -> str:
        return self.rng.choice(first) + self.chars(_DIGITS, n - 1)

    def hex(self, n: int) -> str:
        return f"{self.rng.getrandbits(4 * n):0{n}x}"

    def lower_alnum(self, n: int) -> str:
        return self.chars(_LOWER_ALNUM, n)

    def alnum(self, n: int) -> str:
        return self.chars(_ALNUM, n)

    def upper_alnum(self, n: int) -> str:
        return self.chars(_UPPER_ALNUM, n)

    # --- Alibaba Cloud ---------------------------------------------------------------------------------

    def ltai(self) -> str:
        """A long-term Alibaba Cloud AccessKey id: ``LTAI`` + 20 letters and digits (new keys: ``LTAI5t``)."""
        return "LTAI5t" + self.alnum(18)

    def aliyun_sts_key(self) -> str:
        """A temporary STS AccessKey id as ActionTrail shows it."""
        return "STS.N" + self.alnum(20)

    def aliyun_account_id(self) -> str:
        return self.digits(16, first="1")

    def ram_principal_id(self) -> str:
        return self.digits(17, first="2")

    def ram_role_id(self) -> str:
        return self.digits(18, first="3")

    # --- AWS -------------------------------------------------------------------------------------------

    def akia(self) -> str:
        """A long-term AWS access key id: ``AKIA`` + 16 upper-case base32 characters."""
        return "AKIA" + self.chars(_AWS, 16)

    def asia(self) -> str:
        """A temporary (STS) AWS access key id: ``ASIA`` + 16 characters."""
        return "ASIA" + self.chars(_AWS, 16)

    def aws_unique_id(self, prefix: str) -> str:
        """IAM unique ids: ``AIDA`` users, ``AROA`` roles, ``ANPA`` policies (+ 17 characters)."""
        return prefix + self.chars(_AWS, 17)

    def aws_account_id(self) -> str:
        return self.digits(12)

    def s3_request_id(self) -> str:
        return self.chars("0123456789ABCDEF", 16)

    def s3_host_id(self) -> str:
        return self.alnum(76) + "="
