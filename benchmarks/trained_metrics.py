"""Task metrics for bench_fix_trained.py, decoding each output as its wheel does.

All runs are onnxruntime CPU at batch 1. Detections are compared rewritten vs original (the
original's boxes are the reference: "kept" is the share of them the rewritten model still finds);
recognisers are scored against the rendered ground truth and against each other.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


def session(path: Path, threads: int = 1) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads  # 0: onnxruntime's default (one per core)
    opts.log_severity_level = 3  # ddddocr common.onnx declares [1, seqlen] and returns 3-D
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def run_all(path: Path, input_name: str, x: np.ndarray) -> list[list[np.ndarray]]:
    """Every sample at batch 1: outputs[i] is the list of the model's outputs for sample i."""
    sess = session(path, threads=0)
    return [sess.run(None, {input_name: x[i : i + 1]}) for i in range(len(x))]


def latency(
    a: Path, b: Path, input_name: str, x: np.ndarray, runs: int, threads: int
) -> tuple[float, float]:
    """Median seconds per batch-1 run of a and b, interleaved so load drift hits both alike."""
    sa, sb = session(a, threads), session(b, threads)
    feed = {input_name: x[:1]}
    for s in (sa, sb):
        s.run(None, feed)  # warm-up: first-run allocations
    ta: list[float] = []
    tb: list[float] = []
    for _ in range(runs):
        for s, acc in ((sa, ta), (sb, tb)):
            t0 = time.perf_counter()
            s.run(None, feed)
            acc.append(time.perf_counter() - t0)
    return statistics.median(ta), statistics.median(tb)


def default_threads() -> int:
    return os.cpu_count() or 1


@dataclass(frozen=True, kw_only=True)
class OutputError:
    output: int
    relative_l2: float  # ||y' - y|| / ||y|| over all held-out samples
    worst_channel: int | None
    worst_channel_error: float | None


def output_errors(
    ref: list[list[np.ndarray]], new: list[list[np.ndarray]], feature_axis: int | None
) -> list[OutputError]:
    out = []
    for k in range(len(ref[0])):
        y = np.concatenate([r[k].astype(np.float64) for r in ref])
        z = np.concatenate([r[k].astype(np.float64) for r in new])
        rel = float(np.linalg.norm(z - y) / max(np.linalg.norm(y), 1e-30))
        worst: tuple[int | None, float | None] = (None, None)
        if feature_axis is not None and y.ndim > feature_axis:
            ya, za = np.moveaxis(y, feature_axis, 0), np.moveaxis(z, feature_axis, 0)
            errs = [
                np.linalg.norm(za[c] - ya[c]) / max(np.linalg.norm(ya[c]), 1e-30)
                for c in range(ya.shape[0])
            ]
            c = int(np.argmax(errs))
            worst = (c, float(errs[c]))
        out.append(
            OutputError(
                output=k, relative_l2=rel, worst_channel=worst[0], worst_channel_error=worst[1]
            )
        )
    return out


# ---- recognisers -------------------------------------------------------------------------


def ctc_greedy(logits: np.ndarray, charset: Sequence[str], time_axis_first: bool) -> str:
    """Greedy CTC: argmax per step, collapse repeats, drop index 0 (the blank).
    ddddocr OCREngine._process_text_output / _ctc_decode_indices (output [T, 1, C]);
    rapidocr CTCLabelDecode.__call__ / decode(is_remove_duplicate=True) (output [1, T, C])."""
    idx = logits[:, 0, :].argmax(-1) if time_axis_first else logits[0].argmax(-1)
    keep = np.ones(len(idx), dtype=bool)
    keep[1:] = idx[1:] != idx[:-1]
    keep &= idx != 0
    return "".join(charset[i] for i in idx[keep] if i < len(charset))


def decode_rec(outputs: list[list[np.ndarray]], charset: Sequence[str], key: str) -> list[str]:
    return [ctc_greedy(o[0], charset, time_axis_first=key == "ddddocr-rec") for o in outputs]


# ---- detectors ---------------------------------------------------------------------------


def iou_xyxy(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of boxes [N, 4] and [M, 4] as (x1, y1, x2, y2)."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda r: np.prod(np.clip(r[:, 2:] - r[:, :2], 0, None), axis=1)  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None, :] - inter, 1e-9)


def _nms(boxes: np.ndarray, scores: np.ndarray, thr: float) -> list[int]:
    order = list(np.argsort(-scores, kind="stable"))
    keep: list[int] = []
    while order:
        i = order.pop(0)
        keep.append(i)
        if order:
            ious = iou_xyxy(boxes[i : i + 1], boxes[order])[0]
            order = [j for j, v in zip(order, ious, strict=True) if v <= thr]
    return keep


@dataclass(frozen=True, kw_only=True)
class Boxes:
    xyxy: np.ndarray  # [N, 4]
    cls: np.ndarray  # [N]


def yolov8_boxes(out: np.ndarray) -> Boxes:
    """nudenet _postprocess: rows of output0[0].T are (cx, cy, w, h, 18 class scores); keep
    max score >= 0.2, then cv2.dnn.NMSBoxes(score 0.25, IoU 0.45), class-agnostic."""
    rows = out[0].T
    scores = rows[:, 4:].max(1)
    sel = scores >= 0.2
    rows, scores = rows[sel], scores[sel]
    xyxy = np.concatenate([rows[:, :2] - rows[:, 2:4] / 2, rows[:, :2] + rows[:, 2:4] / 2], 1)
    keep = [i for i in _nms(xyxy, scores, 0.45) if scores[i] > 0.25]
    return Boxes(xyxy=xyxy[keep], cls=rows[keep, 4:].argmax(1))


def yolox_boxes(out: np.ndarray, size: tuple[int, int]) -> Boxes:
    """ddddocr DetectionEngine.get_bbox: demo_postprocess (grid offsets, exp sizes, strides
    8/16/32), score = obj * cls, multiclass_nms_class_agnostic(nms 0.45, score 0.1)."""
    pred = out[0].astype(np.float64)
    grids, strides = [], []
    for s in (8, 16, 32):
        hs, ws = size[0] // s, size[1] // s
        xv, yv = np.meshgrid(np.arange(ws), np.arange(hs))
        grids.append(np.stack((xv, yv), 2).reshape(-1, 2))
        strides.append(np.full((hs * ws, 1), s))
    grid, stride = np.concatenate(grids), np.concatenate(strides)
    xy = (pred[:, :2] + grid) * stride
    wh = np.exp(pred[:, 2:4]) * stride
    scores = pred[:, 4:5] * pred[:, 5:]
    cls, best = scores.argmax(1), scores.max(1)
    sel = best > 0.1
    xyxy = np.concatenate([xy - wh / 2, xy + wh / 2], 1)[sel]
    keep = _nms_plus_one(xyxy, best[sel], 0.45)
    return Boxes(xyxy=xyxy[keep], cls=cls[sel][keep])


def _nms_plus_one(boxes: np.ndarray, scores: np.ndarray, thr: float) -> list[int]:
    """ddddocr's nms uses pixel-inclusive areas ((x2 - x1 + 1) * (y2 - y1 + 1))."""
    grown = boxes.copy()
    grown[:, 2:] += 1
    return _nms(grown, scores, thr)


def boxes_kept(
    ref: list[Boxes], new: list[Boxes], same_class: bool, thr: float = 0.5
) -> tuple[int, int, int]:
    """(reference boxes matched one-to-one at IoU >= thr, reference boxes, rewritten boxes)."""
    kept = total = found = 0
    for r, n in zip(ref, new, strict=True):
        total += len(r.xyxy)
        found += len(n.xyxy)
        if not len(r.xyxy) or not len(n.xyxy):
            continue
        iou = iou_xyxy(r.xyxy, n.xyxy)
        if same_class:
            iou = np.where(r.cls[:, None] == n.cls[None, :], iou, 0.0)
        used: set[int] = set()
        for i in np.argsort(-iou.max(1)):
            for j in np.argsort(-iou[i]):
                if iou[i, j] < thr:
                    break
                if int(j) not in used:
                    used.add(int(j))
                    kept += 1
                    break
    return kept, total, found


def text_mask_iou(
    ref: list[list[np.ndarray]], new: list[list[np.ndarray]], thresh: float = 0.3
) -> float:
    """PP-OCR det: pixels with probability > 0.3 (DBPostProcess thresh), IoU pooled over images."""
    inter = union = 0
    for r, n in zip(ref, new, strict=True):
        a, b = r[0] > thresh, n[0] > thresh
        inter += int(np.logical_and(a, b).sum())
        union += int(np.logical_or(a, b).sum())
    return inter / union if union else 1.0
