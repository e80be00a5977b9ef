"""Zero-DCE training (`darkaction enhance train`): zero-reference losses on frames of the prepared training videos.

    weights = enhance_train(cfg)     # <out>/weights.pth (plain state dict, official key names)

The paper trains on 2,500 frames sampled uniformly from the training videos plus 2,000 extra images of varied
illumination; Adam lr 1e-4, weight decay 1e-4, gradient-norm clip 0.1 (official code), 100 epochs. Every epoch writes
`checkpoint.pt` (model + optimiser + history, loadable with weights_only=True), `weights.pth`, `history.json` and
`loss_curves.png`; a re-run resumes from the checkpoint.
"""

from __future__ import annotations

import dataclasses
import io
import logging
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from darkaction.config import Config, DCETrainConfig
from darkaction.enhancement.base import WEIGHTS_NAME, build_network, default_weights_path
from darkaction.enhancement.losses import LossWeights, zero_dce_loss
from darkaction.errors import ConfigError, DataError
from darkaction.utils import atomic_write_bytes, progress_bar, read_json, write_json

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def uniform_frame_positions(lengths: list[int], n: int) -> list[tuple[int, int]]:
    """Spread n picks evenly over the concatenation of all videos' frames: [(video index, frame index)]."""
    total = int(sum(lengths))
    if total == 0 or n <= 0:
        return []
    starts = np.cumsum([0, *lengths])
    picks = np.unique(np.linspace(0, total - 1, min(n, total)).round().astype(np.int64))
    vids = np.searchsorted(starts, picks, side="right") - 1
    return [(int(v), int(p - starts[v])) for v, p in zip(vids, picks, strict=True)]


def read_image(path: str | Path) -> np.ndarray:
    """PNG/JPEG/BMP -> uint8 H,W,3 RGB; a DataError naming the file when it cannot be read."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise DataError(f"{path}: not a readable image (PNG, JPEG or BMP expected)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def training_images(cfg: Config) -> list[np.ndarray]:
    """The training set: `n_frames` frames uniformly from the prepared train split + `extra_images` (uint8 H,W,3)."""
    from darkaction.data.prepare import open_prepared

    tc = cfg.enhance.train
    images: list[np.ndarray] = []
    if tc.frames_from not in ("cache", "source"):
        raise ConfigError(f"enhance.train.frames_from must be cache or source, got {tc.frames_from!r}")
    if tc.n_frames > 0:
        index, cache = open_prepared(cfg)
        records = [r for r in index.split("train") if r.video_id in cache]
        lengths = [int(cache.meta(r.video_id)["n_frames"]) for r in records]
        picks = uniform_frame_positions(lengths, tc.n_frames)
        if tc.frames_from == "cache":
            images += [np.array(cache.frames(records[v].video_id)[f]) for v, f in picks]
        else:  # the paper (Sec. 4.1): frames as recorded, decoded again at their source resolution
            images += _source_frames([records[v].path for v, _ in picks], [f for _, f in picks], tc.image_size)
    if tc.extra_images:
        folder = Path(tc.extra_images)
        if not folder.is_dir():
            raise DataError(f"{folder}: enhance.train.extra_images is not a folder; give a folder of PNG/JPEG images")
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataError(f"{folder}: no PNG/JPEG/BMP images found for enhance.train.extra_images")
        images += [read_image(p) for p in files]
    if not images:
        raise DataError(
            f"{cfg.data.prepared}: no training frames (train split empty and no extra images); "
            "run 'darkaction prepare' or set enhance.train.extra_images=FOLDER"
        )
    return images


def _source_frames(paths: list[str], frames: list[int], size: int) -> list[np.ndarray]:
    """Frame `frames[i]` of video `paths[i]`, decoded at source resolution and resized to size x size as training
    would (`_batch`), so memory holds training-size images only. Each video is decoded once, up to its last pick
    (picks come grouped by video, in order: `uniform_frame_positions`)."""
    from darkaction.data.video import decode

    out: list[np.ndarray] = []
    i = 0
    while i < len(paths):
        j = i
        while j < len(paths) and paths[j] == paths[i]:
            j += 1
        video, _ = decode(paths[i], resize="none", max_frames=max(frames[i:j]) + 1)
        picked = [video[min(f, len(video) - 1)] for f in frames[i:j]]
        out += [_resized(im, size) for im in picked]
        i = j
    return out


def _resized(im: np.ndarray, size: int) -> np.ndarray:
    if im.shape[:2] == (size, size):
        return np.array(im)
    return cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA if im.shape[0] > size else cv2.INTER_LINEAR)


def _batch(images: list[np.ndarray], idx: np.ndarray, size: int) -> torch.Tensor:
    """Resize the picked images to size x size (official: plain resize, aspect not kept) -> float B,3,S,S in [0,1]."""
    out = np.stack([_resized(images[i], size) for i in idx])
    return torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255.0).contiguous()


def _save_torch(obj, path: Path) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def training_settings(tc: DCETrainConfig, method: str) -> dict:
    """What decides the trained weights, apart from the number of epochs (a run may be extended) and where they go:
    a checkpoint made with other settings is not resumed or reused."""
    settings = dataclasses.asdict(tc)
    settings.pop("out", None)
    settings.pop("epochs", None)
    settings["method"] = method
    return settings


def same_settings(recorded: dict | None, tc: DCETrainConfig, method: str) -> bool:
    """Whether a checkpoint's recorded settings are `tc`'s. A setting added to DCETrainConfig after the checkpoint
    was written counts as its default there (that is how it was trained), so a new option does not retrain
    everyone's Zero-DCE."""
    if not isinstance(recorded, dict):
        return False
    defaults = training_settings(DCETrainConfig(), method)
    return {**defaults, **recorded} == training_settings(tc, method)


def is_trained(out_dir: str | Path, tc: DCETrainConfig, method: str) -> bool:
    """True when `out_dir` holds weights trained for all `tc.epochs` epochs with exactly these settings."""
    ckpt_path = Path(out_dir) / CHECKPOINT_NAME
    if not ((Path(out_dir) / WEIGHTS_NAME).is_file() and ckpt_path.is_file()):
        return False
    try:
        ckpt = torch.load(ckpt_path, weights_only=True, map_location="cpu")
    except Exception:  # unreadable / truncated checkpoint: train again
        return False
    return same_settings(ckpt.get("settings"), tc, method) and int(ckpt.get("epoch", -1)) + 1 >= tc.epochs


def train_dce(
    images: list[np.ndarray],
    tc: DCETrainConfig,
    out_dir: str | Path,
    method: str = "zero-dce",
    device: str = "cpu",
    resume: bool = True,
    progress: bool = True,
) -> Path:
    """Train DCE-Net (or Zero-DCE++) on uint8 H,W,3 images; returns the path of the plain state dict."""
    if tc.loss_form not in ("code", "paper"):
        raise ConfigError(f"enhance.train.loss_form must be 'code' or 'paper', got {tc.loss_form!r}")
    if tc.image_size < tc.exposure_patch or tc.image_size < 4:
        raise ConfigError(f"enhance.train.image_size={tc.image_size} is smaller than the exposure patch")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(tc.seed)
    net = build_network(method).to(device)
    net.init_weights(0.02)
    opt = torch.optim.Adam(net.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    weights = LossWeights(tc.w_tv, tc.w_spa, tc.w_col, tc.w_exp, tc.exposure, tc.exposure_patch, tc.loss_form)
    history: dict[str, list] = {"epoch": [], "total": [], "tv": [], "spa": [], "col": [], "exp": [], "brightness": []}
    start = 0
    settings = training_settings(tc, method)
    ckpt_path = out / CHECKPOINT_NAME
    ckpt = torch.load(ckpt_path, weights_only=True, map_location=device) if resume and ckpt_path.is_file() else None
    if ckpt is not None and ckpt.get("method") != method:
        raise DataError(f"{ckpt_path}: checkpoint is for {ckpt.get('method')}, not {method}; use another out dir")
    if ckpt is not None and not same_settings(ckpt.get("settings"), tc, method):
        if progress:
            log.info(f"{ckpt_path}: no record of the same enhance.train settings; training again from scratch")
        ckpt = None
    if ckpt is not None:
        net.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        history = ckpt["history"]
        start = int(ckpt["epoch"]) + 1
    n = len(images)
    bs = min(tc.batch_size, n)
    steps = n // bs  # drop the last partial batch, as the official DataLoader (drop_last=True)
    net.train()
    for epoch in range(start, tc.epochs):
        order = np.random.default_rng(tc.seed + epoch).permutation(n)  # per-epoch seed: resume gives the same order
        sums = dict.fromkeys(("total", "tv", "spa", "col", "exp", "brightness"), 0.0)
        desc = f"zero-dce epoch {epoch + 1}/{tc.epochs}"
        bar = progress_bar(range(steps), desc=desc, disable=not progress, leave=False)
        for s in bar:
            x = _batch(images, order[s * bs : (s + 1) * bs], tc.image_size).to(device)
            y, r = net(x)
            total, parts = zero_dce_loss(x, y, r, weights)
            opt.zero_grad(set_to_none=True)
            total.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), tc.grad_clip)
            opt.step()
            parts["total"] = float(total.detach())
            parts["brightness"] = float(y.detach().mean())
            for k in sums:
                sums[k] += parts[k]
            bar.set_postfix(loss=f"{parts['total']:.4f}", mean=f"{parts['brightness']:.3f}", refresh=False)
        history["epoch"].append(epoch + 1)
        for k, v in sums.items():
            history[k].append(v / max(steps, 1))
        state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
        _save_torch(state, out / WEIGHTS_NAME)
        _save_torch(
            {
                "model": state,
                "optimizer": opt.state_dict(),
                "epoch": epoch,
                "history": history,
                "method": method,
                "settings": settings,
            },
            ckpt_path,
        )
        write_json(out / "history.json", history)
        plot_loss_curves(history, out / "loss_curves.png")
        if progress:
            tqdm.write(f"epoch {epoch + 1}: loss {history['total'][-1]:.4f} mean {history['brightness'][-1]:.3f}")
    if not (out / WEIGHTS_NAME).is_file():  # epochs == 0 or already past: still leave usable weights
        _save_torch({k: v.detach().cpu() for k, v in net.state_dict().items()}, out / WEIGHTS_NAME)
    return out / WEIGHTS_NAME


def plot_loss_curves(history: dict, path: Path) -> Path:
    """Total and weighted-free part losses per epoch (log scale) and the mean output brightness, as one PNG."""
    from darkaction.utils import figure, save_figure

    fig, (a, b) = figure(1, 2, figsize=(10, 3.6))
    ep = history["epoch"]
    for k in ("total", "tv", "spa", "col", "exp"):
        vals = np.maximum(np.asarray(history[k], dtype=float), 1e-12)
        a.plot(ep, vals, marker="o" if len(ep) < 20 else None, label=k if k == "total" else f"L_{k} (unweighted)")
    a.set_yscale("log")
    a.set_xlabel("epoch")
    a.set_title("Zero-DCE losses")
    a.legend(fontsize=8)
    b.plot(ep, history["brightness"], marker="o" if len(ep) < 20 else None)
    b.set_xlabel("epoch")
    b.set_title("mean output brightness")
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)


def enhance_train(cfg: Config, progress: bool = True) -> Path:
    """`darkaction enhance train`: gather the frames, train `cfg.enhance.method`, return the weights path."""
    from darkaction.utils import resolve_device

    method = cfg.enhance.method
    if method not in ("zero-dce", "zero-dce++"):
        raise ConfigError(f"enhance train trains zero-dce or zero-dce++, not enhance.method={method!r}")
    out = default_weights_path(cfg).parent
    images = training_images(cfg)
    if progress:
        log.info(f"training {method} on {len(images)} images -> {out}")
    path = train_dce(images, cfg.enhance.train, out, method, resolve_device(cfg.device), progress=progress)
    hist = read_json(out / "history.json") if (out / "history.json").is_file() else None
    if progress and hist and hist["total"]:
        log.info(f"final loss {hist['total'][-1]:.4f}, mean brightness {hist['brightness'][-1]:.3f}; weights {path}")
    return path
