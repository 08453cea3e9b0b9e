"""Configuration: what the user asked for, frozen and validated before any model is read."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, kw_only=True)
class Config:
    """Effective settings for a scan (flags over config file over defaults)."""

    input_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    dims: dict[str, int] = field(default_factory=dict)
    source: str | None = None  # the config file these came from, for messages
    max_macs: int | None = None  # budget on total MACs (CA900 when exceeded)
    max_params: int | None = None  # budget on total params (CA900 when exceeded)
    max_increase: float | None = None  # allowed growth over a base model (0.02 = 2%), with diff
