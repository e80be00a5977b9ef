"""`Recognizer`: a trained run loaded once (model, enhancer, sampler, normalisation, class names) for every inference.

    rec = Recognizer.from_run("runs/demo")                  # a run directory, or one .ckpt file on its own
    rec.predict("night.avi")                                # {"label", "prob", "top_k", "probs", "n_frames", ...}
    rec.predict(frames)                                     # uint8 (T,H,W,3) RGB at any size, or an iterator of frames
    for w in rec.windows("hours.mp4", window=4, stride=2):  # sliding windows, decoded as a stream
        print(w["start"], w["label"], w["prob"])

`evaluate`, `predict` and the CLI all go through it: a video is decoded and resized to the run's cache size, enhanced
with the run's enhancer exactly as the cache was, sampled into k test views (`data.dataset.test_views`, the same code
evaluation uses) and classified with the softmax averaged over the views.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from darkaction.errors import ConfigError, DataError
from darkaction.inference.stream import FrameStream

log = logging.getLogger(__name__)

EXPORT_RECORD = "recognizer.json"  # what `darkaction export` writes beside the exported models
MAX_VIEWS = 64  # views per video or window: more only multiplies the cost
MAX_WINDOW_S = 3600.0  # a window longer than an hour is a mistake (its frames are all held in memory)


def resolve_run(run: str | Path) -> tuple[Path, Path]:
    """A run directory or a checkpoint file -> (run_dir, checkpoint). The directory's best.ckpt, else last.ckpt."""
    p = Path(run)
    if p.is_file():
        run_dir = p.parent.parent if p.parent.name == "checkpoints" else p.parent
        return run_dir, p
    if not p.is_dir():
        raise DataError(f"{p}: no such run directory or checkpoint; pass runs/<name> or a .ckpt file")
    for name in ("best.ckpt", "last.ckpt"):
        if (p / "checkpoints" / name).is_file():
            return p, p / "checkpoints" / name
    raise DataError(f"{p}: no checkpoints/best.ckpt or last.ckpt; train the run first (darkaction train)")


def autocast_for(cfg: Any, device: str):
    """bf16 autocast when the run's precision resolves to bf16 on this device, else a null context."""
    from darkaction.training.run import resolve_precision

    dev = "cuda" if device.startswith("cuda") else "cpu"
    prec = resolve_precision(cfg.train.precision, "gpu" if dev == "cuda" else "cpu")
    if prec.startswith("bf16"):
        return torch.autocast(dev, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _run_config(run_dir: Path, ckpt_path: Path, info: dict):
    """The run's config: the copy embedded in the checkpoint (exactly what it was trained with, wherever the file
    was moved), else config.yaml beside it (checkpoints from before the embedding)."""
    from darkaction.config import config_from_dict, load_config

    if isinstance(info.get("config"), dict):
        return config_from_dict(info["config"])
    if (run_dir / "config.yaml").is_file():
        return load_config(run_dir / "config.yaml")
    raise DataError(
        f"{ckpt_path}: no config.yaml beside it and none embedded (a checkpoint from an older darkaction); "
        "keep the run directory together or retrain"
    )


def _run_enhancer(cfg: Any, info: dict, ckpt_path: Path, device: str):
    """The enhancer the run's cache was made with: weights embedded in the checkpoint, else cfg.enhance.weights.
    None for the identity (no enhancement)."""
    from darkaction.enhancement.base import CurveEnhancer, build_enhancer, build_network, load_state

    e = cfg.enhance
    state = info.get("enhancer")
    if e.method in ("zero-dce", "zero-dce++") and isinstance(state, dict) and state:
        net = build_network(e.method, e.scale_factor if e.method == "zero-dce++" else 1)
        digest = load_state(net, state, source=f"{ckpt_path} (embedded enhancer)")
        return CurveEnhancer(net, e.method, digest, e.precision, e.batch_size, device, e.at)
    try:
        enhancer = build_enhancer(dataclasses.replace(cfg, device=device))
    except DataError as err:
        raise DataError(f"{ckpt_path}: cannot rebuild the run's enhancer: {err}") from None
    return None if getattr(enhancer, "name", "") == "identity" else enhancer


class Recognizer:
    """Classify videos, frames and live streams with one trained model (see the module docstring).

    Args:
        cfg: the run's resolved Config (sampling.alpha, n_min/n_max and normalisation as training recorded them).
        classes: class names in label order.
        model: the classifier, clip (B,C,T,H,W) -> logits (B,K).
        enhancer: frames uint8 (N,H,W,3) -> uint8, or None for none.
        device: where the model runs.
    """

    def __init__(self, cfg: Any, classes: list[str], model: torch.nn.Module, enhancer=None, device: str = "cpu"):
        from darkaction.data.sampling import sampler_params
        from darkaction.data.transforms import ClipTransform

        self.cfg = cfg
        self.classes = list(classes)
        self.model = model.eval().to(device)
        self.enhancer = enhancer
        self.device = device
        s = cfg.sampling
        self.T = int(s.T)
        self.strategy = s.test_strategy or s.strategy
        self.params = sampler_params(s, s.n_min or None, s.n_max or None)
        self.transform = ClipTransform(cfg.augment, train=False, blank=s.blank)
        self.seed = int(cfg.train.seed)
        self.flip = bool(cfg.eval.flip)  # also classify every view mirrored and average the two (eval.flip)
        self.checkpoint: Path | None = None

    @classmethod
    def from_run(
        cls, run: str | Path, device: str | None = None, enhancer: bool = True, precision: str = "run"
    ) -> Recognizer:
        """Load a run directory (its best.ckpt, else last.ckpt), a single .ckpt file (config embedded) or a folder
        written by `darkaction export` (ONNX or TorchScript models, run without PyTorch autograd).

        `enhancer=False` skips the enhancer (for clips from an already enhanced cache); `precision="fp32"` runs the
        enhancer and the model in fp32 (the run's own setting, often bf16 on CPUs that have it, otherwise)."""
        if precision not in ("run", "fp32"):
            raise ConfigError(f"precision must be 'run' or 'fp32', got {precision!r}")
        if Path(run).is_dir() and (Path(run) / EXPORT_RECORD).is_file():
            from darkaction.inference.export import load_export

            return load_export(run, enhancer=enhancer)
        from darkaction.models.build import build_model
        from darkaction.training.precise_bn import pending
        from darkaction.training.run import load_checkpoint
        from darkaction.utils import flush_denormals, resolve_device

        run_dir, ckpt_path = resolve_run(run)
        ckpt = load_checkpoint(ckpt_path)
        if pending(ckpt):
            log.warning(f"{ckpt_path}: saved before training ended, so its BatchNorm statistics are the lagging "
                        "running averages (precise BN recomputes them at the end of training); finish the run "
                        "(darkaction train --resume) for the final statistics")  # fmt: skip
        info = ckpt.get("darkaction", {}) or {}
        cfg = _run_config(run_dir, ckpt_path, info)
        if precision == "fp32":
            cfg.enhance.precision, cfg.train.precision = "fp32", "32"
        classes = list(info.get("classes") or [])
        if not classes and (run_dir / "data.json").is_file():
            from darkaction.utils import read_json

            classes = list(read_json(run_dir / "data.json")["classes"])
        if not classes:
            raise DataError(f"{ckpt_path}: the class names are missing (no 'darkaction' entry, no data.json)")
        # the checkpoint holds every weight: the pretrained file the run started from is neither needed nor required
        # to still exist (a run directory copied to another machine)
        cfg.model.pretrained = ""
        device = device or resolve_device(cfg.device)
        state = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
        # trained weights can decay into denormals, which slow fp32 convolution tens of times on some CPUs; only
        # here, at inference: a resumed training run keeps its weights bit for bit
        flush_denormals(state)
        if cfg.model.se:
            # runs from before `se_kind` existed used channel SE (Conv3d gates); their configs do not say so
            gates = [v for k, v in state.items() if k.endswith("se.fc1.weight")]
            cfg.model.se_kind = "channel" if gates and gates[0].dim() == 5 else cfg.model.se_kind
        model = build_model(cfg.model, len(classes), cfg.sampling.T)
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            raise DataError(f"{ckpt_path}: weights do not fit the run's model ({e})") from None
        rec = cls(cfg, classes, model, _run_enhancer(cfg, info, ckpt_path, device) if enhancer else None, device)
        rec.checkpoint = ckpt_path
        return rec

    # ------------------------------------------------------------------------------------------ building blocks

    def preprocess(self, frames: np.ndarray) -> np.ndarray:
        """Decoded frames uint8 (N,H,W,3) at any size -> the run's cache frames: resized and enhanced as the cache
        was (enhancement before or after resizing, `enhance.at`). -> uint8 (N,h,w,3)."""
        from darkaction.data.video import output_size, resize_frame

        c = self.cfg.cache
        frames = np.asarray(frames, dtype=np.uint8)
        if self.crops:  # the actor's window over the whole clip, then enhanced as the cache was (enhance.at: cache)
            from darkaction.data.actor import crop_to_actor

            crops = crop_to_actor(frames, (c.height, c.width), c.crop_scale)
            return crops if self.enhancer is None else self.enhancer(crops)
        h, w = output_size(frames.shape[1], frames.shape[2], c.resize, c.height, c.width, c.short_side)

        def resize(x: np.ndarray) -> np.ndarray:  # exactly as `prepare` resized the cache
            return x if x.shape[1:3] == (h, w) else np.stack([resize_frame(f, (h, w)) for f in x])

        if self.enhancer is None:
            return resize(frames)
        if self.cfg.enhance.at == "source":
            return resize(self.enhancer(frames))
        return self.enhancer(resize(frames))

    @property
    def crops(self) -> bool:
        """Whether this run's cache holds actor-centred windows (`cache.crop: actor`)."""
        from darkaction.data.actor import uses_crop

        return uses_crop(self.cfg.cache)

    def _shrink(self, frames: np.ndarray) -> np.ndarray:
        """An actor-cropped run's frames resized to the size its window is cut from (`actor.shrink`)."""
        from darkaction.data.actor import shrink

        c = self.cfg.cache
        return shrink(frames, (c.height, c.width), c.crop_scale)

    def views(
        self, frames: np.ndarray, views: int = 5, position: int = 0, with_rates: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Cache frames uint8 (N,h,w,3) -> k test views float32 (k,C,T,H,W), as evaluation samples them for the
        video at `position` of its split; `with_rates` also returns their frames per slot (k,)."""
        from darkaction.data.dataset import test_views

        flow = None
        if self.cfg.model.in_channels == 5:  # RGB + optical flow: the flow of the enhanced frames, as in training
            from darkaction.data.flow import encode_flow, farneback_flow

            flow = encode_flow(farneback_flow(frames))
        seed = (int(self.cfg.sampling.view_seed), self.seed, int(position))
        return test_views(
            frames, self.T, views, seed, self.strategy, self.params, self.transform, flow, with_rates=with_rates,
            slot=self.cfg.sampling.slot,
        )  # fmt: skip

    def _view_probs(self, frames: np.ndarray, views: int, position: int = 0) -> torch.Tensor:
        """Cache frames -> the per-view softmax (1,V,K) of one video."""
        clips, rates = self.views(frames, views, position=position, with_rates=True)
        return self.predict_clips(clips.unsqueeze(0), rates.unsqueeze(0))[0]

    @torch.inference_mode()
    def predict_clips(
        self, clips: torch.Tensor, rates: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """clips (B,V,C,T,H,W) [, their frames per slot (B,V): needed by a `model.rate_input` model] -> per-view
        softmax (B,V,K) fp32 on the CPU, and the head's attention (B,V,T') or None. The V views of every video go
        through the model as one batch; with `flip` their mirrored copies too, and each view's softmax is the mean of
        its own and its mirror's (the attention is the unmirrored view's)."""
        b, v = clips.shape[:2]
        x = clips.flatten(0, 1).to(self.device)
        extra: tuple = ()
        if getattr(self.model, "rate_input", False):
            if rates is None:
                raise ConfigError("this run's model reads each view's sampling rate (model.rate_input): pass rates=")
            r = rates.flatten().to(self.device)
            extra = (torch.cat([r, r]) if self.flip else r,)
        if self.flip:
            mirrored = x.flip(-1)
            if mirrored.shape[1] == 5:  # RGB + optical flow: mirroring negates the horizontal displacement too
                mirrored[:, 3].neg_()
            x = torch.cat([x, mirrored])
        with autocast_for(self.cfg, self.device):
            if hasattr(self.model, "forward_with_attention"):  # R(2+1)D classifiers and exported models
                logits, att = self.model.forward_with_attention(x, *extra)
            else:  # SlowFast, EfficientNet-BERT, MRAN: a BERT head among them stores its attention
                logits = self.model(x)
                att = getattr(getattr(self.model, "head", None), "attention", None)
        probs = logits.float().softmax(-1)
        if self.flip:
            probs = 0.5 * (probs[: b * v] + probs[b * v :])
            att = None if att is None else att[: b * v]
        probs = probs.view(b, v, -1).cpu()
        if att is not None:
            att = att.float().reshape(b, v, -1).cpu()
        return probs, att

    def _result(self, mean: torch.Tensor, top_k: int) -> dict:
        order = torch.argsort(mean, descending=True)[: max(1, min(int(top_k), len(self.classes)))]
        return {
            "label": self.classes[int(order[0])],
            "prob": float(mean[order[0]]),
            "top_k": [{"label": self.classes[int(i)], "prob": float(mean[i])} for i in order],
            "probs": {c: float(mean[i]) for i, c in enumerate(self.classes)},
        }

    def _check(self, views: int, top_k: int) -> None:
        if not 1 <= int(views) <= MAX_VIEWS:
            raise ConfigError(f"views must be 1..{MAX_VIEWS}, got {views}")
        if int(top_k) < 1:
            raise ConfigError(f"top_k must be >= 1, got {top_k}")

    # ------------------------------------------------------------------------------------------ public

    def predict(self, video: Any, views: int = 5, top_k: int = 5, chunk: int = 64) -> dict:
        """Classify one whole video: a path or URL, a uint8 array (T,H,W,3) RGB, or an iterator of (H,W,3) frames.

        Returns {"label", "prob", "top_k": [{"label", "prob"}...], "probs": {class: p}, "n_frames", "views"}
        (+ "warnings" when decoding stopped early). Only the resized, enhanced frames are kept in memory (for an
        actor-cropped run, `cache.crop`, the whole video shrunk to the size its windows are cut from)."""
        self._check(views, top_k)
        stream = video if isinstance(video, FrameStream) else FrameStream(video)
        if self.crops:  # the window follows the actor over the whole video: shrink each chunk, crop them together
            frames = self.preprocess(np.concatenate([self._shrink(c) for c in stream.chunks(chunk)]))
        else:
            frames = np.concatenate([self.preprocess(c) for c in stream.chunks(chunk)])
        probs = self._view_probs(frames, views)
        out = {**self._result(probs[0].mean(0), top_k), "n_frames": int(len(frames)), "views": int(views)}
        problems = ([stream.error] if stream.error else []) + stream.warnings
        if problems:
            out["warnings"] = problems
        return out

    def windows(
        self,
        video: Any,
        window: float = 4.0,
        stride: float = 2.0,
        views: int = 5,
        top_k: int = 5,
        fps: float | None = None,
        thumbnails: bool = True,
    ) -> Iterator[dict]:
        """Label sliding windows of `window` seconds every `stride` seconds, as the frames arrive.

        Yields per window {"index", "start", "end" (seconds), "label", "prob", "top_k", "probs", "n_frames",
        "latency" (seconds from the arrival of the window's last frame to its label; files are read 8 frames at a
        time, live sources frame by frame), "thumbnail" (its middle enhanced frame, uint8 (h,w,3), when
        `thumbnails`)}. Memory holds one window of cache-size frames (pre-crop size for an actor-cropped run, each
        window cropped and enhanced on its own), whatever the video's length.
        When at least half a stride of frames is left after the last window, one more window ends at the last frame;
        a video shorter than one
        window gives one window over all of it. When the source dies part-way the iteration ends there the same way;
        `FrameStream.error` (pass a FrameStream to see it) says why.
        """
        self._check(views, top_k)
        if not (math.isfinite(window) and math.isfinite(stride) and 0 < window <= MAX_WINDOW_S and stride > 0):
            raise ConfigError(
                f"window and stride must be positive seconds (window at most {MAX_WINDOW_S:g}), got window={window}, "
                f"stride={stride}"
            )
        stream = video if isinstance(video, FrameStream) else FrameStream(video, fps=fps)
        buf: deque[np.ndarray] = deque()
        seen = 0  # frames read so far
        next_end = None  # frame count at which the next window closes
        index = 0
        size = hop = 0
        for chunk in stream.chunks(1 if stream.live else 8):  # live: label as soon as the last frame is in
            if next_end is None:  # the frame rate is known once the source is open
                size = max(1, int(round(window * stream.fps)))
                hop = max(1, int(round(stride * stream.fps)))
                next_end = size
            arrived = time.perf_counter()
            # an actor-cropped run keeps the window's frames shrunk, and crops each window as a clip of its own
            for f in self._shrink(chunk) if self.crops else self.preprocess(chunk):
                buf.append(f)
                seen += 1
                if len(buf) > size:
                    buf.popleft()
                if seen == next_end:
                    yield self._window(buf, index, seen, stream.fps, views, top_k, arrived, thumbnails)
                    index += 1
                    next_end += hop
        if buf and (index == 0 or seen - (next_end - hop) >= max(1, hop // 2)):
            # the tail after the last full window (at least half a stride of it), or a video shorter than one window:
            # one more window ending at the last frame, so the whole video is labelled
            yield self._window(buf, index, seen, stream.fps, views, top_k, time.perf_counter(), thumbnails)

    def _window(self, buf, index, end, fps, views, top_k, arrived, thumbnails) -> dict:
        frames = np.stack(buf)
        if self.crops:
            frames = self.preprocess(frames)
        probs = self._view_probs(frames, views, position=index)
        out = {
            "index": index,
            "start": round((end - len(frames)) / fps, 3),
            "end": round(end / fps, 3),
            **self._result(probs[0].mean(0), top_k),
            "n_frames": int(len(frames)),
            "latency": round(time.perf_counter() - arrived, 4),
        }
        if thumbnails:
            out["thumbnail"] = frames[len(frames) // 2].copy()
        return out
