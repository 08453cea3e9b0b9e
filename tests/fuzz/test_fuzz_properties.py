"""Property-based fuzzing inside the suite (issue 10): for mutated models, rule files, configs,
baselines and fix inputs, convaudit returns a result or raises a ConvauditError whose message is
one short line. Never another exception.

Derandomized with a small example count so the suite stays fast and repeatable;
FUZZ_EXAMPLES=500 (``make fuzz``) runs the same properties longer, and campaign.py runs the
CLI in child processes with a timeout and a memory cap.
"""

from __future__ import annotations

import os
import random
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mutate import (
    EDGE_INTS,
    baseline_text,
    config_text,
    conv_chain,
    mutate_bytes,
    mutate_proto,
    mutate_text,
    seed_model,
    small_real_models,
)

from convaudit.audit import scan_one
from convaudit.config import Config
from convaudit.errors import MESSAGE_LIMIT, ConvauditError

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SEEDS = st.integers(min_value=0, max_value=2**32 - 1)
MODELS = small_real_models()


def one_line(error: ConvauditError) -> None:
    text = str(error)
    assert "\n" not in text and "\r" not in text, text
    assert len(text) <= 2 * MESSAGE_LIMIT + 10, len(text)


def scan_or_refuse(path: Path) -> None:
    """The invariant: a report (its errors one line each) or a ConvauditError, nothing else."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a Python warning on stderr breaks the contract too
            report = scan_one(str(path), Config(), weights=True)
    except ConvauditError as exc:
        one_line(exc)
        return
    for error in report.errors:
        assert "\n" not in error and "internal error" not in error, error


@FUZZ
@given(seed=SEEDS, which=st.integers(min_value=0, max_value=len(MODELS)))
def test_byte_mutated_models_scan_or_refuse(tmp_path: Path, seed: int, which: int) -> None:
    rng = random.Random(seed)
    model = conv_chain() if which == len(MODELS) else seed_model(MODELS[which])
    source = model.SerializeToString()
    path = tmp_path / "m.onnx"
    path.write_bytes(mutate_bytes(source, rng))
    scan_or_refuse(path)


@FUZZ
@given(seed=SEEDS, which=st.integers(min_value=0, max_value=len(MODELS)), edits=st.integers(1, 3))
def test_protobuf_mutated_models_scan_or_refuse(
    tmp_path: Path, seed: int, which: int, edits: int
) -> None:
    rng = random.Random(seed)
    model = conv_chain() if which == len(MODELS) else seed_model(MODELS[which])
    for _ in range(edits):
        model = mutate_proto(model, rng)
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    (tmp_path / "w.bin").write_bytes(bytes(64))  # something for an external location to find
    scan_or_refuse(path)


@FUZZ
@given(seed=SEEDS)
def test_mutated_rule_files_load_or_refuse(tmp_path: Path, seed: int) -> None:
    from convaudit.rules.loader import builtin_dir, load_file, rule_files

    rng = random.Random(seed)
    source = rng.choice(rule_files(builtin_dir()))
    path = tmp_path / "r.yaml"
    path.write_text(mutate_text(source.read_text(encoding="utf-8"), rng), encoding="utf-8")
    try:
        load_file(path)
    except ConvauditError as exc:
        one_line(exc)


@FUZZ
@given(seed=SEEDS)
def test_generated_configs_load_or_refuse(tmp_path: Path, seed: int) -> None:
    from convaudit.config import load_config

    rng = random.Random(seed)
    path = tmp_path / "convaudit.toml"
    text = config_text(rng)
    path.write_text(mutate_text(text, rng) if rng.random() < 0.3 else text, encoding="utf-8")
    try:
        load_config(path)
    except ConvauditError as exc:
        one_line(exc)


@FUZZ
@given(seed=SEEDS)
def test_baselines_load_or_refuse(tmp_path: Path, seed: int) -> None:
    from convaudit.baseline import load_baseline

    path = tmp_path / "baseline.json"
    path.write_text(baseline_text(random.Random(seed)), encoding="utf-8")
    try:
        load_baseline(path)
    except ConvauditError as exc:
        one_line(exc)


@FUZZ
@given(text=st.text(max_size=60))
def test_cli_values_parse_or_refuse(text: str) -> None:
    from convaudit.budgets import parse_budget, parse_increase
    from convaudit.config import parse_dim_flags, parse_input_shape_flags

    for parse in (
        lambda: parse_budget("--max-macs", text),
        lambda: parse_increase(text),
        lambda: parse_input_shape_flags([text]),
        lambda: parse_dim_flags([text]),
    ):
        try:
            parse()
        except ConvauditError as exc:
            one_line(exc)


@FUZZ
@given(
    shape=st.lists(st.sampled_from(EDGE_INTS[:9]) | st.integers(0, 64), min_size=1, max_size=5),
    dtype=st.sampled_from(["<f4", "<f8", "|u1", "<i8", "|b1"]),
    seed=SEEDS,
)
def test_npz_calibration_files_read_or_refuse(
    tmp_path: Path, shape: list[int], dtype: str, seed: int
) -> None:
    """fix's .npz reader: headers declaring any shape, bodies truncated or flipped."""
    import io
    import zipfile

    from convaudit.fix.validate import read_npz

    header = io.BytesIO()
    np.lib.format.write_array_header_2_0(
        header, {"descr": dtype, "fortran_order": False, "shape": tuple(abs(d) for d in shape)}
    )
    body = header.getvalue() + bytes(random.Random(seed).randrange(256))
    path = tmp_path / "calib.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("input.npy", body)
    if seed % 3 == 0:
        path.write_bytes(mutate_bytes(path.read_bytes(), random.Random(seed)))
    try:
        arrays = read_npz(path)
    except ConvauditError as exc:
        one_line(exc)
        return
    assert all(isinstance(a, np.ndarray) for a in arrays.values())


@FUZZ
@given(dims=st.lists(st.sampled_from(EDGE_INTS) | st.integers(0, 64), min_size=1, max_size=5))
def test_random_feeds_from_declared_shapes_allocate_within_budget(dims: list[int]) -> None:
    """fix's random feed for any declared shape: the budget refuses before numpy allocates."""
    from convaudit.fix.validate import input_feeds

    class Input:
        name, type, shape = "x", "tensor(float)", dims

    class Session:
        def get_inputs(self) -> list[Input]:
            return [Input()]

    try:
        feeds, _ = input_feeds(Session(), None)
    except ConvauditError as exc:
        one_line(exc)
        return
    assert feeds[0]["x"].nbytes <= 2 * 1024**3


@pytest.mark.parametrize("path", MODELS, ids=[p.name for p in MODELS])
def test_every_seed_model_scans(tmp_path: Path, path: Path) -> None:
    """The seeds themselves are valid: mutations start from a model that scans."""
    pinned = tmp_path / path.name
    pinned.write_bytes(seed_model(path).SerializeToString())
    report = scan_one(str(pinned), Config(), weights=True)
    assert report.facts is not None and report.errors == ()
