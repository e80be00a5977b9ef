"""`darkaction pretrain`: pretrain a backbone once on the synthetic motion corpus and export it like IG65M weights.

    out = pretrain(load_config("configs/pretrain.yaml"))   # -> weights/<name>.pth (+ .json beside it)

The paper fine-tunes an R(2+1)D pretrained on a large corpus (the reference code loads IG65M weights). Nothing that
large fits a 2-core CPU, so this plays its role at CPU scale: `synth` renders a bright corpus of many recording groups
and 14 motion kinds (`synth.profile: pretrain`), a TGAP classifier is trained on it (`train`), and its backbone is
written alone, in torchvision's key layout (`stem.*`, `layer1.*` ... `layer4.*`), to a `.pth` file that
`model.pretrained` loads like any IG65M / torchvision file. A JSON file beside it records the sha256, the command,
the resolved config and the corpus's test accuracy, so the file can be checked and reproduced. With
`model.pretrained` set, training continues from that backbone (recorded with its sha256 as `continued_from`).

Every stage resumes: the corpus is kept when its metadata matches, the frame cache skips cached videos, training
resumes from its last checkpoint.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from darkaction.errors import ConfigError
from darkaction.utils import atomic_write_bytes, file_sha256, flush_denormals, write_json

log = logging.getLogger(__name__)

DEFAULT_CONFIG = Path(__file__).resolve().parent / "configs" / "pretrain.yaml"  # package data
BACKBONE_PREFIX = "model.backbone."


def export_backbone(checkpoint: str | Path, out: str | Path) -> dict:
    """A training checkpoint -> the backbone alone as a torchvision-layout state dict in `out` (atomic).

    Returns {"path", "sha256", "tensors", "parameters", "bytes", "denormals_flushed"}."""
    import io

    from darkaction.training.run import load_checkpoint

    state = load_checkpoint(Path(checkpoint)).get("state_dict", {})
    backbone = {k[len(BACKBONE_PREFIX) :]: v.clone() for k, v in state.items() if k.startswith(BACKBONE_PREFIX)}
    if not backbone:
        raise ConfigError(f"{checkpoint}: holds no backbone weights (keys {BACKBONE_PREFIX}*); is it a training run?")
    flushed = flush_denormals(backbone)
    buf = io.BytesIO()
    torch.save(backbone, buf)
    out = Path(out)
    atomic_write_bytes(out, buf.getvalue())
    return {
        "path": str(out),
        "sha256": file_sha256(out),
        "tensors": len(backbone),
        "parameters": int(sum(v.numel() for k, v in backbone.items() if not k.endswith("num_batches_tracked"))),
        "bytes": out.stat().st_size,
        "denormals_flushed": flushed,
    }


def default_output(cfg) -> Path:
    """weights/<backbone>_w<width>_<config name>.pth, e.g. weights/r2plus1d_18_w0.25_pretrain.pth."""
    return Path("weights") / f"{cfg.model.backbone}_w{cfg.model.width:g}_{cfg.name}.pth"


def _check(cfg) -> None:
    if cfg.model.head != "tgap" or cfg.model.backbone not in ("r2plus1d_18", "r2plus1d_34"):
        raise ConfigError(
            f"pretrain trains an R(2+1)D backbone under a TGAP head; got model.backbone={cfg.model.backbone}, "
            f"model.head={cfg.model.head} (configs/pretrain.yaml is the reference)"
        )
    if cfg.train.pretrain_epochs:
        raise ConfigError(
            "pretrain trains the backbone itself: leave train.pretrain_epochs at 0 (to continue from an earlier "
            "backbone, set model.pretrained to its file)"
        )


def pretrain(cfg, out: str | Path | None = None, command: str = "") -> Path:
    """Render the corpus (if needed), prepare it, train the TGAP model, evaluate it on the corpus's test groups and
    export its backbone to `out` (default `default_output(cfg)`). Returns the weights file."""
    from darkaction.evaluation.evaluate import evaluate
    from darkaction.pipeline import build_data
    from darkaction.training.run import train, train_state

    _check(cfg)
    out = Path(out) if out else default_output(cfg)
    start = time.perf_counter()
    build_data(cfg)
    run_dir = cfg.resolved_run_dir()
    state = train_state(run_dir, cfg.train.epochs)
    log.info(f"\n== pretrain: train ({state}) -> {run_dir}")
    if state != "done":
        train(cfg, resume=state == "resume")
    res = evaluate(run_dir, views=cfg.eval.views) if _has_test(cfg) else {}
    info = export_backbone(run_dir / "checkpoints" / "last.ckpt", out)
    from darkaction.config import to_dict

    record = {
        **info,
        "command": command or f"darkaction pretrain --config <config> --out {out}",
        "run_dir": str(run_dir),
        "corpus": {"root": cfg.data.source.root, "profile": cfg.synth.profile, "seed": cfg.synth.seed},
        "continued_from": _continued_from(cfg),
        "corpus_test": {k: res[k] for k in ("top1", "mean_class_acc", "n_test_videos") if k in res},
        "seconds": round(time.perf_counter() - start, 1),
        "config": to_dict(cfg),
    }
    write_json(out.with_suffix(".json"), record)
    acc = f"; corpus test top-1 {100 * res['top1']:.1f} % ({res['n_test_videos']} videos)" if res else ""
    log.info(f"backbone written to {out} (sha256 {info['sha256'][:16]}..., {info['bytes'] / 1e6:.1f} MB){acc}")
    return out


def _continued_from(cfg) -> dict | None:
    """The backbone this pretraining started from (model.pretrained), with its sha256; None from scratch."""
    from darkaction.models.pretrained import pretrained_file

    path = pretrained_file(cfg.model.pretrained)
    return {"path": str(path), "sha256": file_sha256(path)} if path else None


def _has_test(cfg) -> bool:
    from darkaction.data.prepare import open_prepared

    index, _ = open_prepared(cfg)
    return len(index.split("test")) > 0
