"""Human-readable numbers (112.9M) and their inverse for budget flags (4.1G)."""

from __future__ import annotations

import re

from convaudit.safe_io import shown

_UNITS = (("T", 10**12), ("G", 10**9), ("M", 10**6), ("K", 10**3))


def human(n: int | float | None, digits: int = 1) -> str:
    """112896000 -> "112.9M"; None -> "?"."""
    if n is None:
        return "?"
    for suffix, scale in _UNITS:
        if abs(n) >= scale:
            return f"{n / scale:.{digits}f}{suffix}"
    return f"{n:.{digits}f}" if isinstance(n, float) and not float(n).is_integer() else f"{int(n)}"


def percent(share: float | None) -> str:
    """0.2134 -> "21.3%"."""
    return "?" if share is None else f"{100 * share:.1f}%"


def parse_quantity(text: str) -> int:
    """ "4.1G" -> 4100000000; "25.6M" -> 25600000; plain integers pass through."""
    # At most 30 digits: float() of 5,000 digits is inf, and round(inf) an OverflowError.
    m = re.fullmatch(
        r"\s*([0-9]{1,30}(?:\.[0-9]{1,30})?)\s*([KMGT]?)\s*", text, flags=re.IGNORECASE
    )
    if not m:
        raise ValueError(f"not a quantity: {shown(text)} (expected e.g. 4.1G, 25.6M, 1200)")
    scale = dict(_UNITS).get(m.group(2).upper(), 1)
    return round(float(m.group(1)) * scale)
