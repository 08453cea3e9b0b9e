"""The read/write gate (issue 10): symlinked, FIFO, device and oversized inputs and outputs are
refused with one line naming the file, before anything blocks or is allocated."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper
from typer.testing import CliRunner

from convaudit.atomic import write_atomic
from convaudit.cli import app
from convaudit.errors import ConfigError, ConvauditError, ModelLoadError, one_line
from convaudit.model.loader import check_external_data, load_model
from convaudit.safe_io import BUDGET_ENV, clip, external_data, memory_budget, shown

SECRET = b"CI_TOKEN=hunter2hunter2hunter2hunter2"


def external_model(folder: Path, location: str, **extra: str) -> Path:
    """A model with one 16-byte float tensor ``w`` stored externally at ``location``."""
    tensor = numpy_helper.from_array(np.zeros(4, dtype=np.float32), "w")
    tensor.ClearField("raw_data")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    for key, value in {"location": location, "offset": "0", "length": "16", **extra}.items():
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph(
        [helper.make_node("Identity", ["w"], ["y"])],
        "g",
        [],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [4])],
        initializer=[tensor],
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "m.onnx"
    path.write_bytes(helper.make_model(graph).SerializeToString())
    return path


def read_w(path: Path) -> np.ndarray:
    with load_model(path) as loaded:
        return loaded.read_tensor("w")


def test_a_weight_file_inside_the_folder_still_reads(tmp_path: Path) -> None:
    model = external_model(tmp_path / "m", "w.bin")
    (tmp_path / "m" / "w.bin").write_bytes(np.arange(4, dtype=np.float32).tobytes())
    assert read_w(model).tolist() == [0.0, 1.0, 2.0, 3.0]
    # A symlink that stays inside the folder is fine: only where it lands matters.
    (tmp_path / "m" / "sub").mkdir()
    os.rename(tmp_path / "m" / "w.bin", tmp_path / "m" / "sub" / "real.bin")
    (tmp_path / "m" / "w.bin").symlink_to("sub/real.bin")
    assert read_w(model).tolist() == [0.0, 1.0, 2.0, 3.0]


@pytest.mark.parametrize(
    "make_link",
    [
        pytest.param(lambda m, out: (m / "w.bin").symlink_to("../secret.bin"), id="relative"),
        pytest.param(lambda m, out: (m / "w.bin").symlink_to(out), id="absolute"),
        pytest.param(
            lambda m, out: ((m / "a").symlink_to(out), (m / "w.bin").symlink_to("a")), id="chain"
        ),
        pytest.param(lambda m, out: (m / "w.bin").symlink_to("/dev/zero"), id="dev-zero"),
        pytest.param(
            lambda m, out: (m / "w.bin").symlink_to("/proc/self/environ"), id="proc-environ"
        ),
    ],
)
def test_symlinked_weights_leading_outside_the_folder_are_refused(
    tmp_path: Path, make_link: object
) -> None:
    outside = tmp_path / "secret.bin"
    outside.write_bytes(SECRET)
    model = external_model(tmp_path / "m", "w.bin")
    make_link(tmp_path / "m", outside)  # type: ignore[operator]
    with pytest.raises(ModelLoadError, match=r"invalid external data location 'w\.bin'") as err:
        read_w(model)
    assert str(model) in str(err.value) and "hunter2" not in str(err.value)
    with load_model(model) as loaded, pytest.raises(ModelLoadError):
        check_external_data(loaded)  # what fix runs before onnx.load reads anything


def test_a_symlinked_folder_leading_outside_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "w.bin").write_bytes(SECRET[:16])
    model = external_model(tmp_path / "m", "d/w.bin")
    (tmp_path / "m" / "d").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ModelLoadError, match=r"invalid external data location 'd/w\.bin'"):
        read_w(model)


def test_a_fifo_as_weight_file_is_refused_without_blocking(tmp_path: Path) -> None:
    model = external_model(tmp_path, "w.bin")
    os.mkfifo(tmp_path / "w.bin")
    with pytest.raises(ModelLoadError, match=r"w\.bin: external data file .* is a FIFO"):
        read_w(model)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("length", str(2**62)),
        ("length", str(2**64)),
        ("length", "-1"),
        ("offset", "abc"),
        ("offset", "1e3"),
        ("offset", "-4"),
        ("length", "1_6"),
        ("length", "9" * 5000),
    ],
)
def test_external_sizes_are_parsed_strictly(tmp_path: Path, key: str, value: str) -> None:
    model = external_model(tmp_path, "w.bin", **{key: value})
    (tmp_path / "w.bin").write_bytes(bytes(16))
    with pytest.raises(ModelLoadError) as err:
        read_w(model)
    message = str(err.value)
    assert message.startswith((f"{model}: ", f"{tmp_path / 'w.bin'}: ")) and len(message) < 400
    assert "tensor 'w'" in message
    assert "\n" not in message


def test_a_length_beyond_the_file_is_refused_before_allocating(tmp_path: Path) -> None:
    model = external_model(tmp_path, "w.bin", length=str(2**40))
    (tmp_path / "w.bin").write_bytes(bytes(16))
    with pytest.raises(ModelLoadError, match=r"file is too short: tensor 'w' needs bytes 0\.\."):
        read_w(model)


def test_nul_in_a_location_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="invalid external data location"):
        external_data(tmp_path / "m.onnx", {"location": "w.bin\x00../../etc/passwd"}, "w")


def test_memory_budget_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BUDGET_ENV, "3M")
    assert memory_budget() == 3 * 1024**2
    monkeypatch.setenv(BUDGET_ENV, "12")
    assert memory_budget() == 12
    monkeypatch.setenv(BUDGET_ENV, "lots")
    with pytest.raises(ConvauditError, match="CONVAUDIT_MEMORY_BUDGET='lots' is not a size"):
        memory_budget()


def test_a_tensor_over_the_budget_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = external_model(tmp_path, "w.bin")
    (tmp_path / "w.bin").write_bytes(bytes(16))
    monkeypatch.setenv(BUDGET_ENV, "8")
    with pytest.raises(
        ModelLoadError, match=r"tensor 'w' would take 16 bytes, over the memory budget"
    ):
        read_w(model)


def test_a_fifo_as_model_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "m.onnx"
    os.mkfifo(fifo)
    with pytest.raises(ModelLoadError, match=r"m\.onnx: model is a FIFO"):
        load_model(fifo)
    res = CliRunner().invoke(app, ["scan", str(fifo)])
    assert res.exit_code == 2 and res.stderr.count("\n") == 1 and "is a FIFO" in res.stderr


def test_outputs_are_never_devices_or_fifos(tmp_path: Path) -> None:
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    link = tmp_path / "null.json"
    link.symlink_to("/dev/null")
    for target in (fifo, link, Path("/dev/null")):
        with pytest.raises(ConvauditError, match=r"output is a (FIFO|device)"):
            write_atomic(target, "{}")
    assert fifo.is_fifo() and link.is_symlink() and Path("/dev/null").is_char_device()
    model = Path(__file__).resolve().parents[1] / "sample_models" / "textbook_5x5.onnx"
    res = CliRunner().invoke(app, ["scan", str(model), "-o", "/dev/null"])
    assert res.exit_code == 2
    assert res.stderr == (
        "convaudit: error: /dev/null: output is a device: "
        "convaudit writes only regular files or new paths\n"
    )


def test_a_fifo_or_device_as_baseline_config_or_rule_file_is_refused(tmp_path: Path) -> None:
    from convaudit.baseline import load_baseline
    from convaudit.config import load_config
    from convaudit.rules.loader import load_file

    fifo = tmp_path / "x"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="baseline is a FIFO"):
        load_baseline(fifo)
    with pytest.raises(ConfigError, match="baseline is a device"):
        load_baseline("/dev/zero")
    with pytest.raises(ConfigError, match="config is a FIFO"):
        load_config(fifo)
    with pytest.raises(ConvauditError, match="rule file is a FIFO"):
        load_file(fifo)


def test_deep_or_huge_baselines_are_config_errors(tmp_path: Path) -> None:
    from convaudit.baseline import load_baseline

    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_baseline(deep)
    digits = tmp_path / "digits.json"
    digits.write_text('{"schema_version": ' + "1" * 100_000 + "}")
    with pytest.raises(ConfigError, match="baseline is not valid JSON") as err:
        load_baseline(digits)
    assert len(str(err.value)) < 400


def test_deep_toml_and_huge_numbers_are_config_errors(tmp_path: Path) -> None:
    from convaudit.config import load_config

    deep = tmp_path / "convaudit.toml"
    deep.write_text("x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_config(deep)
    deep.write_text(f'max-macs = "{"9" * 5000}"\n')
    with pytest.raises(ConfigError, match="not a quantity") as err:
        load_config(deep)
    assert len(str(err.value)) < 400
    deep.write_text(f"max-macs = {'9' * 5000}\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(deep)


def test_a_5000_digit_max_macs_flag_is_one_line() -> None:
    model = Path(__file__).resolve().parents[1] / "sample_models" / "textbook_5x5.onnx"
    res = CliRunner().invoke(app, ["scan", str(model), "--max-macs", "9" * 5000])
    assert res.exit_code == 2 and res.stderr.count("\n") == 1 and len(res.stderr) < 400
    assert "--max-macs" in res.stderr and "not a quantity" in res.stderr


def test_an_alias_bomb_anywhere_in_a_rule_file_is_bounded(tmp_path: Path) -> None:
    from convaudit.errors import RuleFileError
    from convaudit.rules.loader import load_file

    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(
        "\n".join(lines) + "\nrules:\n  - id: X001\n    params:\n      p: *a9\n", encoding="utf-8"
    )
    with pytest.raises(RuleFileError, match="expands to more than 100,000 values"):
        load_file(bomb)


def test_echoed_text_is_clipped_and_errors_are_one_line() -> None:
    assert shown("x" * 10_000_000) == "'" + "x" * 198 + "…"
    assert len(shown("x" * 10_000_000)) == 200
    assert clip("a\nb\r\nc") == "a b c"
    assert one_line("line one\nline two") == "line one line two"
    err = ConvauditError("bad\n" + "y" * 5000, path="f\nx")
    assert "\n" not in str(err) and len(str(err)) < 1100


def test_a_10mb_rule_id_is_echoed_in_one_short_line(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "big.yaml").write_text(f"rules:\n  - id: {'a' * 10_000_000}\n", encoding="utf-8")
    model = Path(__file__).resolve().parents[1] / "sample_models" / "textbook_5x5.onnx"
    res = CliRunner().invoke(app, ["scan", str(model), "--rules-dir", str(rules)])
    assert res.exit_code == 2 and res.stderr.count("\n") == 1 and len(res.stderr) < 600


def test_jobs_0_is_one_error_line_not_a_usage_panel() -> None:
    model = Path(__file__).resolve().parents[1] / "sample_models" / "textbook_5x5.onnx"
    res = CliRunner().invoke(app, ["scan", str(model), "--jobs", "0"])
    assert res.exit_code == 2
    assert res.stderr == "convaudit: error: --jobs must be at least 1, got 0\n"


@pytest.mark.parametrize(
    "text",
    [f"{'k' * 10_000_000} = 1\n", f'fail-on = "{"v" * 10_000_000}"\n'],
    ids=["key", "value"],
)
def test_a_10mb_toml_key_or_value_is_echoed_cut_to_200_characters(
    tmp_path: Path, text: str
) -> None:
    from convaudit.config import load_config

    (tmp_path / "convaudit.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "convaudit.toml")
    assert "…" in str(err.value) and len(str(err.value)) < 400 + len(str(tmp_path))
