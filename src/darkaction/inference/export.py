"""`darkaction export RUN --format onnx|torchscript`: the run's enhancer and classifier as standalone model files.

    files = export_run("runs/demo", "exported/", fmt="onnx")      # enhancer.onnx, classifier.onnx, recognizer.json
    rec = Recognizer.from_run("exported/")                        # the same predictions, through onnxruntime

What is exported is the model `Recognizer` runs, not a look-alike: the classifier maps normalised clips
(N, C, T, H, W) float32 to logits (N, K) and, for the BERT head, its CLS attention over time (N, T') as a second output
(`forward_with_attention`: the attention is returned, not stored on the module); the Zero-DCE enhancer maps frames
(N, 3, H, W) float32 in [0, 1] to enhanced frames of the same shape. The classifier's N is dynamic (its C, T, H, W
are the run's), the enhancer's N, H and W. Decoding, resizing,
sampling and normalisation stay in Python (`Recognizer`), read from `recognizer.json` (the run's resolved config and
class names). Everything is exported in fp32.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from darkaction.errors import ConfigError, DataError
from darkaction.inference.recognizer import EXPORT_RECORD, Recognizer
from darkaction.utils import file_sha256, read_json, write_json

log = logging.getLogger(__name__)

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
MAX_PROB_DIFF = 1e-3  # an export whose softmax differs more from PyTorch's (fp32) is refused
MAX_LEVEL_DIFF = 1  # enhanced uint8 frames may differ by one grey level (rounding of nearly equal floats)


class ExportedClassifier(nn.Module):
    """The traced function: clips (N,C,T,H,W) -> logits (N,K) [, attention (N,T') when the head has one]."""

    def __init__(self, model: nn.Module, attention: bool) -> None:
        super().__init__()
        self.model = model
        self.attention = attention

    def forward(self, x: torch.Tensor):
        if not hasattr(self.model, "forward_with_attention"):
            return self.model(x)
        logits, att = self.model.forward_with_attention(x)
        return (logits, att) if self.attention else logits


class ExportedEnhancer(nn.Module):
    """Zero-DCE / Zero-DCE++ as one function: frames (N,3,H,W) in [0,1] -> enhanced (N,3,H,W), unclamped."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)[0]


def _has_attention(model: nn.Module, x: torch.Tensor) -> bool:
    if not hasattr(model, "forward_with_attention"):
        return False
    with torch.no_grad():
        return model.forward_with_attention(x[:1])[1] is not None


def _save(module: nn.Module, x: torch.Tensor, path: Path, fmt: str, dims: dict[int, str], outputs: list[str]) -> None:
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)  # sizes are traced on purpose
        if fmt == "torchscript":
            torch.jit.save(torch.jit.trace(module, (x,), check_trace=False), str(tmp))
        else:
            shapes = ({i: torch.export.Dim(name, min=1) for i, name in dims.items()},)
            # one self-contained file (the weights inside, not in a .data file beside it)
            torch.onnx.export(module, (x,), str(tmp), dynamo=True, input_names=["input"], output_names=outputs,
                              dynamic_shapes=shapes, external_data=False, verbose=False)  # fmt: skip
    tmp.replace(path)


def export_run(run: str | Path, out: str | Path, fmt: str = "onnx", views: int = 5) -> dict[str, Path]:
    """Export the run's enhancer (when it is a network) and classifier into `out`; returns the written files.
    Checks each exported model against PyTorch on a random input and records the max abs difference."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "onnx":
        try:
            import onnxruntime  # noqa: F401 - checked before the slow export starts
        except ImportError:
            raise DataError(
                "ONNX export needs onnx, onnxscript and onnxruntime: pip install 'darkaction[export]'"
            ) from None
    rec = Recognizer.from_run(run, precision="fp32")
    if getattr(rec.model, "rate_input", False):
        raise ConfigError(
            f"{run}: its model reads each clip's sampling rate (model.rate_input), a second input that export does "
            "not implement yet; use the run with darkaction predict / Recognizer instead"
        )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg, ext = rec.cfg, FORMATS[fmt]
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(views, cfg.model.in_channels, cfg.sampling.T, cfg.augment.height, cfg.augment.width, generator=gen)
    attention = _has_attention(rec.model, x)
    outputs = ["logits", "attention"] if attention else ["logits"]
    files = {"classifier": out / f"classifier{ext}"}
    log.info(f"exporting the classifier ({fmt}) -> {files['classifier']}")
    _save(ExportedClassifier(rec.model, attention).eval(), x, files["classifier"], fmt, {0: "clips"}, outputs)
    record = {"format": fmt, "classifier": files["classifier"].name, "outputs": outputs, "enhancer": None,
              "classes": rec.classes, "checkpoint": str(rec.checkpoint), "torch": torch.__version__}  # fmt: skip
    from darkaction.enhancement.base import CurveEnhancer

    if isinstance(rec.enhancer, CurveEnhancer):
        files["enhancer"] = out / f"enhancer{ext}"
        frames = torch.rand(2, 3, cfg.cache.height or 64, cfg.cache.width or 64, generator=gen)
        log.info(f"exporting the enhancer ({fmt}) -> {files['enhancer']}")
        _save(ExportedEnhancer(rec.enhancer.net).eval(), frames, files["enhancer"], fmt, {0: "frames", 2: "h", 3: "w"},
              ["enhanced"])  # fmt: skip
        record["enhancer"] = files["enhancer"].name
    elif rec.enhancer is not None and cfg.enhance.method not in ("gamma", "identity"):
        raise DataError(f"enhance.method={cfg.enhance.method}: only Zero-DCE networks and gamma can be exported")
    from darkaction.config import to_dict

    record["config"] = to_dict(cfg)
    record["sha256"] = {k: file_sha256(p) for k, p in files.items()}
    files["record"] = write_json(out / EXPORT_RECORD, record)
    exported = load_export(out)
    record["max_abs_diff"] = diff = parity(rec, exported, x)
    write_json(out / EXPORT_RECORD, record)
    if diff["probs"] > MAX_PROB_DIFF or diff.get("enhanced_levels", 0) > MAX_LEVEL_DIFF:
        raise DataError(
            f"{out}: the exported models disagree with PyTorch (max abs difference {diff}; allowed: probabilities "
            f"{MAX_PROB_DIFF:g}, enhanced frames {MAX_LEVEL_DIFF} grey level); the files are kept for inspection"
        )
    log.info(f"exported to {out}: max abs difference to PyTorch {record['max_abs_diff']}")
    return files


def parity(a: Recognizer, b: Recognizer, clips: torch.Tensor) -> dict[str, float]:
    """Max abs difference of the two recognizers' softmax on `clips` (V,C,T,H,W), and of their enhancers on random
    uint8 frames (in grey levels)."""
    pa, _ = a.predict_clips(clips.unsqueeze(0))
    pb, _ = b.predict_clips(clips.unsqueeze(0))
    diff = {"probs": float((pa - pb).abs().max())}
    if a.enhancer is not None and b.enhancer is not None:
        frames = np.random.default_rng(0).integers(0, 60, (4, 48, 64, 3), dtype=np.uint8)
        diff["enhanced_levels"] = float(np.abs(a.enhancer(frames).astype(int) - b.enhancer(frames).astype(int)).max())
    return diff


class ExportedModel:
    """An exported classifier behind the interface `Recognizer` uses: forward_with_attention(x) -> (logits, att)."""

    def __init__(self, path: Path, fmt: str, outputs: list[str]) -> None:
        from darkaction.enhancement.external import load_onnx, load_torchscript

        self.path, self.fmt, self.outputs = path, fmt, outputs
        if fmt == "onnx":
            self.session = load_onnx(path)
        else:
            self.module = load_torchscript(path)

    def eval(self) -> ExportedModel:
        return self

    def to(self, device) -> ExportedModel:
        return self

    def forward_with_attention(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.fmt == "onnx":
            got = self.session.run(None, {self.session.get_inputs()[0].name: x.float().cpu().numpy()})
            got = [torch.from_numpy(np.asarray(g)) for g in got]
        else:
            with torch.inference_mode():
                got = self.module(x.float())
            got = list(got) if isinstance(got, (tuple, list)) else [got]
        return got[0], got[1] if len(got) > 1 else None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_attention(x)[0]


def load_export(folder: str | Path, enhancer: bool = True) -> Recognizer:
    """A Recognizer over the files `export_run` wrote (no checkpoint, no training code path involved)."""
    from darkaction.config import config_from_dict
    from darkaction.enhancement.base import build_enhancer
    from darkaction.enhancement.external import ExternalEnhancer

    folder = Path(folder)
    rec = read_json(folder / EXPORT_RECORD)
    cfg = config_from_dict(rec["config"])
    cfg.train.precision = "32"  # the exported graph is fp32; no autocast around it
    model = ExportedModel(folder / rec["classifier"], rec["format"], rec["outputs"])
    enh = None
    if enhancer and rec.get("enhancer"):
        enh = ExternalEnhancer(folder / rec["enhancer"], batch_size=cfg.enhance.batch_size)
    elif enhancer and cfg.enhance.method in ("gamma", "identity"):
        enh = build_enhancer(cfg)
        enh = None if getattr(enh, "name", "") == "identity" else enh
    out = Recognizer(cfg, rec["classes"], model, enh, "cpu")  # type: ignore[arg-type]
    out.checkpoint = folder / rec["classifier"]
    return out
