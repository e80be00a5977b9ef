"""`evaluate(run, views=None, strategy=None, split="test") -> dict`: k views per video, softmax averaged.

    res = evaluate("runs/demo", views=5)      # or a checkpoint file: runs/demo/checkpoints/last.ckpt
    res["top1"], res["mean_class_acc"], res["clip_top1"], res["per_class"]["run"]["acc"]

Writes into the run directory: `results.json` (or `results_<split>.json` for other splits), `confusion.png`,
`attention.png` (the BERT head's CLS attention over the sampled frames of a few test videos), `curves.png` and the
report (`report.md` / `report.html`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from darkaction.config import Change, apply_override, config_from_dict, to_dict
from darkaction.errors import ConfigError, DataError
from darkaction.inference.recognizer import Recognizer, resolve_run
from darkaction.utils import progress_bar, write_json


def with_data(cfg, overrides: Sequence[Change]):
    """A copy of the run's config with `data.*` overrides applied (any other key is refused: the model, sampling and
    cache settings are the run's)."""
    others = [o for o in overrides if not str(o[0] if isinstance(o, tuple) else o).startswith("data.")]
    if others:
        raise ConfigError(
            f"evaluating on other data takes data.* overrides only (data.source.root, data.prepared, ...); got {others}"
        )
    d = to_dict(cfg)
    for o in overrides:
        apply_override(d, o)
    return config_from_dict(d)


def load_run(run: str | Path, device: str | None = None):
    """(cfg, classes, model in eval mode, checkpoint path) of a trained run: `Recognizer.from_run`'s parts."""
    rec = Recognizer.from_run(run, device or "cpu", enhancer=False)
    return rec.cfg, rec.classes, rec.model, rec.checkpoint


def evaluate(
    run: str | Path,
    views: int | None = None,
    strategy: str | None = None,
    split: str = "test",
    progress: bool = True,
    batch_size: int | None = None,
    data: Sequence[Change] = (),
    flip: bool | None = None,
    test_rates: str | None = None,
) -> dict:
    """Evaluate a run on `split` with `views` views per video (default eval.views) sampled by `strategy` (default
    sampling.test_strategy or sampling.strategy); `batch_size` videos (default eval.batch_size) and all their views go
    through the model as one batch; `flip` (default eval.flip) also classifies every view mirrored; `test_rates`
    (default sampling.test_rates) picks the views' rates. Returns the results dict (also written to results.json).

    `data`: `data.*` overrides of the run's config (e.g. `data.prepared=prepared/other`) to score the run on another
    dataset with the same classes, prepared and enhanced with the run's cache settings and enhancer (`build_data` with
    the run's config and the same overrides). The run's own config (embedded in its checkpoint) wins over any edit of
    config.yaml, so this is the way to point it elsewhere. Files then carry the prepared folder's name
    (`results_<split>_<name>.json`, `confusion_...png`) and the run's report is left as it is."""
    from darkaction.data.dataset import ClipDataset
    from darkaction.data.prepare import open_prepared
    from darkaction.data.sampling import LENGTH_RATE_STRATEGIES, sample_views
    from darkaction.enhancement.run import training_cache
    from darkaction.evaluation.metrics import (
        accuracy_by_brightness,
        average_views,
        classification_metrics,
        clip_top1,
    )
    from darkaction.report import plot_attention, plot_confusion, plot_curves, write_report

    if split not in ("train", "val", "test"):
        raise ConfigError(f"--split must be train, val or test, got '{split}'")
    run_dir, _ = resolve_run(run)
    rec = Recognizer.from_run(run, enhancer=False)  # the cache is already enhanced
    cfg, classes, ckpt_path = rec.cfg, rec.classes, rec.checkpoint
    k = int(views or cfg.eval.views or cfg.sampling.test_views)
    if k < 1:
        raise ConfigError(f"--views must be >= 1, got {k}")
    if data:
        cfg = with_data(cfg, data)
    if strategy:
        cfg.sampling.test_strategy = strategy
    if test_rates:
        cfg.sampling.test_rates = test_rates
    if strategy or data or test_rates:
        rec = Recognizer(cfg, classes, rec.model, rec.enhancer, rec.device)
    if flip is not None:
        rec.flip = bool(flip)
    used_strategy = rec.strategy

    index, raw = open_prepared(cfg)
    if list(index.classes) != classes:
        raise DataError(
            f"{cfg.data.prepared}: the prepared index has classes {index.classes} but the run was trained on "
            f"{classes}; evaluate with the data the run was trained on"
        )
    cache = training_cache(cfg, dark_copies=False)  # evaluation never reads the dark training copies
    records = index.split(split)
    if not records:
        raise DataError(f"the index in {cfg.data.prepared} has no '{split}' videos; pick another --split")
    n_min, n_max = cfg.sampling.n_min or None, cfg.sampling.n_max or None
    flow = None
    if cfg.model.in_channels == 5:  # the RGB + optical-flow model (Table 3)
        from darkaction.training.flow_cache import open_flow_cache

        flow = open_flow_cache(cfg)
    ds = ClipDataset(
        records, cache, cfg, train=False, views=k, n_min=n_min, n_max=n_max, seed=cfg.train.seed, flow_cache=flow
    )
    videos_per_batch = max(1, int(batch_size or cfg.eval.batch_size))
    loader = DataLoader(ds, batch_size=videos_per_batch, shuffle=False, num_workers=cfg.train.workers)
    all_probs, all_att, labels = [], [], []
    t0 = time.perf_counter()
    for batch in progress_bar(loader, desc=f"evaluate {split} ({k} views)", unit="video", disable=not progress or None):
        probs, att = rec.predict_clips(batch["clip"], batch["rate"])
        all_probs.append(probs)
        all_att.append(att)
        labels.append(batch["label"])
    seconds = time.perf_counter() - t0
    view_probs = torch.cat(all_probs)  # (N, V, K)
    y = torch.cat(labels)
    m = classification_metrics(average_views(view_probs), y, len(classes))
    results = {
        "top1": m["top1"],
        "top5": m["top5"],
        "mean_class_acc": m["mean_class_acc"],
        "clip_top1": clip_top1(view_probs, y, len(classes)),
        "n_test_videos": m["n"],
        "split": split,
        "views": k,
        "strategy": used_strategy,
        "flip": rec.flip,
        "test_rates": cfg.sampling.test_rates if used_strategy in LENGTH_RATE_STRATEGIES else "own",
        "classes": classes,
        "per_class": {c: {"acc": m["per_class"][i], "n": m["support"][i]} for i, c in enumerate(classes)},
        "confusion": m["confusion"],
        "checkpoint": str(ckpt_path),
        "seconds": round(seconds, 2),
        "predictions": [
            {
                "video_id": r.video_id,
                "label": classes[int(t)],
                "pred": classes[int(p.argmax())],
                "prob": float(p.max()),
                "group": r.group,
                "n_frames": r.n_frames,
                "brightness": raw.meta(r.video_id).get("mean_brightness"),
            }  # fmt: skip
            for r, t, p in zip(records, y, average_views(view_probs))
        ],
    }
    preds = results["predictions"]
    if all(p["brightness"] is not None for p in preds):
        results["by_brightness"] = accuracy_by_brightness(
            [p["brightness"] for p in preds], [p["pred"] == p["label"] for p in preds]
        )
    suffix = f"_{split}_{Path(cfg.data.prepared).name}" if data else ("" if split == "test" else f"_{split}")
    write_json(run_dir / f"results{suffix}.json", results)

    cm_png = plot_confusion(
        m["confusion"],
        classes,
        run_dir / f"confusion{suffix}.png",
        title=f"{split}: top-1 {100 * m['top1']:.1f} % ({k} views)",
    )
    att_png = None
    if all_att and all_att[0] is not None:
        att = torch.cat(all_att)  # (N, V, T')
        items, seen = [], set()
        for i, r in enumerate(records):  # one video per class, view 0, as the model saw it
            if r.label in seen or len(items) >= 6:
                continue
            seen.add(r.label)
            n = len(cache.frames(r.video_id))
            idx = sample_views(
                used_strategy, n, cfg.sampling.T, k, seed=(int(cfg.sampling.view_seed), ds.seed, i), **ds.params
            )[0]
            pred = classes[int(view_probs[i].mean(0).argmax())]
            items.append(
                {
                    "frames": idx,
                    "attention": att[i, 0].numpy(),
                    "title": f"{r.video_id} ({n} frames) true {classes[r.label]}, predicted {pred}",
                }
            )
        att_png = plot_attention(items, run_dir / f"attention{suffix}.png")
    if data:
        return results  # another dataset's scores: the run's own report stays
    curves = plot_curves(run_dir / "metrics.csv", run_dir / "curves.png")
    write_report(run_dir, results, {"curves": curves, "confusion": cm_png, "attention": att_png})
    return results
