"""``scan --weights``: energy retained and predicted error on CA101 findings, in every format."""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from fixmodels import conv_model, low_rank_weight, save
from onnx import numpy_helper
from typer.testing import CliRunner

from convaudit.api import scan
from convaudit.cli import app
from convaudit.report import REPORTERS, render

TEXTBOOK = Path(__file__).resolve().parents[2] / "sample_models" / "textbook_5x5.onnx"


def _ca101(path: Path, weights: bool) -> object:
    report = scan(path, weights=weights).reports[0]
    (finding,) = [f for f in report.findings if f.rule == "CA101"]
    return finding


def _energy_oracle(w: np.ndarray, r: int) -> float:
    """Independent: singular values of W unfolded along Cin, straight from numpy's SVD."""
    m = np.moveaxis(w.astype(np.float64), 1, 0).reshape(w.shape[1], -1)
    s2 = np.linalg.svd(m, compute_uv=False) ** 2
    return float(s2[:r].sum() / s2.sum())


def test_textbook_finding_gets_energy_and_predicted_error() -> None:
    plain = _ca101(TEXTBOOK, weights=False)
    assert "energy_retained" not in plain.facts  # type: ignore[attr-defined]
    finding = _ca101(TEXTBOOK, weights=True)
    w = numpy_helper.to_array(
        next(t for t in onnx.load(str(TEXTBOOK)).graph.initializer if t.name == "conv5x5.weight")
    )
    expected = _energy_oracle(w, 16)
    facts = finding.facts  # type: ignore[attr-defined]
    assert facts["energy_retained"] == pytest.approx(expected, abs=1e-6)
    assert facts["predicted_error"] == pytest.approx((1 - expected) ** 0.5, abs=1e-6)
    details = finding.recommendation.details  # type: ignore[attr-defined]
    assert details["energy_retained"] == facts["energy_retained"]
    assert "not low-rank" in finding.message  # type: ignore[attr-defined]
    # Same fingerprint with or without weights: baselines keep matching.
    assert finding.fingerprint == plain.fingerprint  # type: ignore[attr-defined]


def test_every_report_format_shows_the_energy() -> None:
    result = scan(TEXTBOOK, weights=True)
    for fmt in REPORTERS:
        text = html.unescape(render(result, fmt))
        assert "energy at width 16" in text or "energy_retained" in text, fmt
    doc = json.loads(render(result, "json"))
    (ca101,) = [f for f in doc["reports"][0]["findings"] if f["rule"] == "CA101"]
    assert 0 < ca101["recommendation"]["energy_retained"] < 0.15


def test_low_rank_weights_in_external_data_are_read(tmp_path: Path) -> None:
    # The textbook layer with a rank-16 weight, saved with external data.
    w = low_rank_weight(np.random.default_rng(20), cout=48, cin=480, k=5, rank=16, noise=0.01)
    model = conv_model(w, (1, 480, 14, 14), pads=[2, 2, 2, 2], name="conv5x5")
    path = tmp_path / "lr.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, location="lr.bin")
    finding = _ca101(path, weights=True)
    facts = finding.facts  # type: ignore[attr-defined]
    assert facts["energy_retained"] > 0.999
    assert facts["energy_retained"] == pytest.approx(_energy_oracle(w, 16), abs=1e-6)
    assert facts["predicted_error"] < 0.012
    assert "not low-rank" not in finding.message  # type: ignore[attr-defined]
    out = CliRunner().invoke(app, ["scan", str(path), "--weights"])
    assert "weights keep 99.99% of their energy at width 16" in out.output


def test_a_following_batchnorm_is_folded_before_measuring(tmp_path: Path) -> None:
    rng = np.random.default_rng(21)
    w = low_rank_weight(rng, cout=48, cin=480, k=5, rank=16)
    model = conv_model(w, (1, 480, 14, 14), pads=[2] * 4, name="conv5x5", bn=True, rng=rng)
    path = save(model, tmp_path / "bn.onnx")
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    scale = inits["bn.scale"] / np.sqrt(inits["bn.var"].astype(np.float64) + 1e-3)
    folded = w.astype(np.float64) * scale[:, None, None, None]
    finding = _ca101(path, weights=True)
    # Rank 16 survives the per-output scaling, but the spectrum (and so E(8)) changes.
    assert finding.facts["energy_retained"] == pytest.approx(  # type: ignore[attr-defined]
        _energy_oracle(folded, 16), abs=1e-6
    )


def test_unreadable_external_weights_are_the_models_error_not_a_missing_figure(
    tmp_path: Path,
) -> None:
    model = onnx.load(str(TEXTBOOK))
    path = tmp_path / "m.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, location="m.bin")
    (tmp_path / "m.bin").unlink()
    # Without --weights the scan never opens the data file; with it, the missing file is said.
    assert scan(path).reports[0].errors == ()
    report = scan(path, weights=True).reports[0]
    (error,) = report.errors
    assert error.startswith("--weights: ") and "m.bin" in error and "not found" in error
    (ca101,) = [f for f in report.findings if f.rule == "CA101"]  # the scan itself stands
    assert "energy_retained" not in ca101.facts
    res = CliRunner().invoke(app, ["scan", str(path), "--weights", "-f", "json"])
    assert res.exit_code == 2 and "m.bin" in res.stderr
    assert json.loads(res.stdout)["reports"][0]["totals"]["macs"] == 112_896_000


def test_weights_read_from_the_scan_s_own_open_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """--weights reuses the file the scan opened: the model structure is parsed once."""
    import convaudit.model.loader as loader_module

    calls: list[str] = []
    real = loader_module.load_model

    def counting(path: object, **kw: object) -> object:
        calls.append(str(path))
        return real(path, **kw)  # type: ignore[arg-type]

    # analyse imports load_model from the loader when it runs: one patch covers every caller
    monkeypatch.setattr(loader_module, "load_model", counting)
    result = scan(str(TEXTBOOK), weights=True)
    (finding,) = [f for f in result.findings if f.rule == "CA101"]
    assert "energy_retained" in finding.facts
    assert calls == [str(TEXTBOOK)]
