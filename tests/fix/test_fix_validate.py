"""validate: relative L2 error per output and interleaved median latency, on stand-in sessions.

The sessions are fakes with a fake clock, so the test checks the method (alternation, warm-up
left out, median not mean, errors per output) without timing anything real.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from convaudit.errors import FixError
from convaudit.fix import validate


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeSession:
    """Each run advances the clock by the next of ``costs`` and logs itself."""

    label: str
    clock: FakeClock
    log: list[str]
    costs: list[float]
    outputs: list[np.ndarray] = field(default_factory=list)

    def get_outputs(self) -> list[Any]:
        return [SimpleNamespace(name=f"out{i}") for i in range(len(self.outputs))]

    def run(self, _names: Any, _feed: Any) -> list[np.ndarray]:
        self.log.append(self.label)
        self.clock.now += self.costs.pop(0) if self.costs else 0.0
        return self.outputs


def test_latency_alternates_skips_the_warm_up_and_takes_the_median(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = FakeClock()
    monkeypatch.setattr(validate.time, "perf_counter", clock)
    log: list[str] = []
    # Warm-up runs cost 100 s (must not count); then 5 timed runs each, one slow outlier in B.
    a = FakeSession("A", clock, log, [100.0, 2.0, 2.0, 3.0, 2.0, 2.0])
    b = FakeSession("B", clock, log, [100.0, 0.125, 0.125, 5.0, 0.25, 0.125])
    before, after = validate.latency(a, b, {}, min_pairs=5, budget_s=0.0)
    assert log == ["A", "B", "A", "B", "B", "A", "A", "B", "B", "A", "A", "B"]
    assert (before, after) == (2.0, 0.125)  # medians; B's mean would be 1.125
    assert before / after == 16.0


def test_output_errors_are_relative_l2_per_output_over_every_feed() -> None:
    clock, log = FakeClock(), []
    ref = [np.array([3.0, 4.0], np.float32), np.array([[1.0, 0.0]], np.float32)]
    new = [np.array([3.0, 4.5], np.float32), np.array([[1.0, 0.0]], np.float32)]
    before = FakeSession("A", clock, log, [], outputs=ref)
    after = FakeSession("B", clock, log, [], outputs=new)
    errors = validate.output_errors(before, after, [{}, {}])
    # out0: ‖(0, 0.5)‖ / ‖(3, 4)‖ = 0.5 / 5 on each feed, pooled: sqrt(2·0.25) / sqrt(2·25).
    assert errors == {"out0": pytest.approx(0.1), "out1": 0.0}


@pytest.mark.parametrize(
    "changed",
    [np.zeros((1, 3), np.float32), np.zeros((1, 2), np.float16)],
    ids=["shape", "dtype"],
)
def test_an_output_that_changes_shape_or_dtype_is_an_error(changed: np.ndarray) -> None:
    clock, log = FakeClock(), []
    before = FakeSession("A", clock, log, [], outputs=[np.zeros((1, 2), np.float32)])
    after = FakeSession("B", clock, log, [], outputs=[changed])
    with pytest.raises(FixError, match="output 'out0' changed from float32"):
        validate.output_errors(before, after, [{}])
