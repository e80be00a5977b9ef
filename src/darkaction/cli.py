"""`darkaction` command line: argument parsing only. Each subcommand calls the stage function of the same name.

Every subcommand takes `--config FILE` and repeatable `--set section.key=value` overrides. A `DarkActionError`
(bad input, unknown config key, a feature not implemented yet) is printed without a traceback and exits with 2.
Heavy libraries (torch, Lightning) are imported inside the handlers so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from pathlib import Path

from darkaction.errors import ConfigError, DarkActionError, DataError

EXIT_USAGE = 2


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", metavar="FILE", help="YAML config (default: built-in defaults)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="extend",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="override config values, e.g. --set train.epochs=3 model.head=tgap (repeatable)",
    )


def _load(args: argparse.Namespace, flags: dict | None = None):
    """The config file, then --set, then the command's own flags ({"dotted.key": value}; None and False = not
    given), which set fields directly: no value is turned back into a string."""
    from darkaction.config import load_config

    given = [(k, v) for k, v in (flags or {}).items() if v is not None and v is not False]
    return load_config(args.config, [*args.overrides, *given])


# ---------------------------------------------------------------------------------------------- subcommands


def _add_synth(sub) -> None:
    p = sub.add_parser(
        "synth",
        help="generate the built-in synthetic dark-action dataset (ARID 1.1 track-1 layout)",
        description="Render articulated figures doing the six ARID track-1 actions under simulated low light, "
        "encode them with H.264 and write train.csv / test.csv / metadata.json in the ARID layout.",
    )
    _config_args(p)
    p.add_argument("--out", help="output folder (synth.out)")
    p.add_argument("--seed", type=int, help="random seed (synth.seed); the same seed gives byte-identical files")
    p.add_argument("--preview", action="store_true", help="also write a brightened contact sheet preview.png")
    p.add_argument("--workers", type=int, help="processes rendering clips (synth.workers); the output is the same")
    p.add_argument(
        "--profile",
        help="named settings: default | arid (ARID 1.1's structure: 320x240, 30 fps, 33-225 frames, 16 train "
        "groups x 3 takes, 5 test groups x 4 takes, small people, brightness 4.5-55/255, a fifth of the takes "
        "nearly black) | arid-tables (arid with 15 test groups: 360 test videos, for the tables) | arid-val (the "
        "same structure, another seed and other render settings) | pretrain (the "
        "bright 14-motion corpus of `darkaction pretrain`); synth.* keys in the config or --set override its values",
    )
    p.set_defaults(func=_run_synth)


def _run_synth(args: argparse.Namespace) -> int:
    cfg = _load(args, {"synth.profile": args.profile or None, "synth.out": args.out or None, "synth.seed": args.seed,
                       "synth.preview": args.preview, "synth.workers": args.workers})  # fmt: skip
    from darkaction.data.synthetic import synth

    out = synth(cfg.synth)
    print(f"synthetic dataset written to {out}")
    return 0


def _add_prepare(sub) -> None:
    p = sub.add_parser(
        "prepare",
        help="index a dataset and decode its videos into a resumable frame cache",
        description="Parse the dataset's split lists, decode every video once (PyAV), resize and store uint8 frames.",
    )
    _config_args(p)
    p.add_argument("--strict", action="store_true", help="stop with an error on the first bad entry (cache.strict)")
    p.add_argument("--stats", action="store_true", help="also write dataset statistics (like `darkaction stats`)")
    p.add_argument("--workers", type=int, help="decoding processes (cache.workers)")
    p.set_defaults(func=_run_prepare)


def _run_prepare(args: argparse.Namespace) -> int:
    cfg = _load(args, {"cache.strict": args.strict, "cache.workers": args.workers})
    from darkaction.data.prepare import prepare
    from darkaction.utils import read_json

    out = prepare(cfg)
    if args.stats:
        from darkaction.data.stats import stats

        stats(cfg)
    return 1 if cfg.cache.strict and read_json(out / "skipped.json") else 0


def _add_stats(sub) -> None:
    p = sub.add_parser(
        "stats",
        help="dataset statistics: clips per class, frame lengths, brightness (PNG + JSON)",
        description="Read a prepared dataset and write <prepared>/stats/stats.json, frame_lengths.png (frames per "
        "clip per class, the paper's Figure 4) and brightness.png.",
    )
    _config_args(p)
    p.set_defaults(func=_run_stats)


def _run_stats(args: argparse.Namespace) -> int:
    cfg = _load(args)
    from darkaction.data.stats import stats

    stats(cfg)
    return 0


def _add_enhance(sub) -> None:
    p = sub.add_parser(
        "enhance",
        help="low-light enhancement: enhance the frame cache, train Zero-DCE, or enhance images",
        description="Enhance a prepared frame cache with a frozen enhancer (zero-dce, zero-dce++, gamma, identity, "
        "external). Subcommands: 'train' trains Zero-DCE, 'image' enhances still images.",
    )
    _config_args(p)
    p.add_argument("--method", help="enhancer: zero-dce | zero-dce++ | gamma | identity | external (enhance.method)")
    p.add_argument("--weights", metavar="FILE", help="Zero-DCE weights (enhance.weights)")
    p.add_argument("--preview", nargs="?", const="", metavar="PNG", help="also write a before/after figure")
    p.set_defaults(func=_run_enhance)
    sub2 = p.add_subparsers(dest="enhance_command", metavar="{train,image}")
    t = sub2.add_parser(
        "train",
        help="train Zero-DCE (or zero-dce++) on frames of the prepared training videos",
        description="Zero-reference training: frames sampled uniformly from the training videos plus "
        "enhance.train.extra_images; checkpoints every epoch and resumes; writes weights.pth and loss_curves.png.",
    )
    _config_args(t)
    t.add_argument("--method", help="zero-dce | zero-dce++ (enhance.method)")
    t.add_argument("--epochs", type=int, help="enhance.train.epochs")
    t.add_argument("--out", help="output folder (enhance.train.out)")
    t.set_defaults(func=_run_enhance_train)
    im = sub2.add_parser("image", help="enhance still images (PNG/JPEG in, PNG out)")
    im.add_argument("inputs", nargs="+", metavar="IN", help="image files")
    im.add_argument("--weights", required=True, metavar="FILE", help="Zero-DCE / Zero-DCE++ state dict")
    im.add_argument("--out", required=True, metavar="DIR", help="output folder")
    im.add_argument("--raw", action="store_true", help="also write the unclamped float output (H,W,3) as .npy")
    im.add_argument("--method", default="zero-dce", choices=["zero-dce", "zero-dce++"])
    im.add_argument("--scale-factor", type=int, default=1, help="Zero-DCE++ downscale factor for the curve estimate")
    im.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "auto"])
    im.set_defaults(func=_run_enhance_image)


def _enhance_flags(args: argparse.Namespace) -> dict:
    return {
        "enhance.method": getattr(args, "method", None) or None,
        "enhance.weights": getattr(args, "weights", None) or None,
    }


def _run_enhance(args: argparse.Namespace) -> int:
    cfg = _load(args, _enhance_flags(args))
    from darkaction.enhancement.run import enhance, preview

    out = enhance(cfg)
    print(f"enhanced cache: {out}")
    if args.preview is not None:
        fig = preview(cfg, args.preview or None)
        print(f"preview figure: {fig}")
    return 0


def _run_enhance_train(args: argparse.Namespace) -> int:
    cfg = _load(
        args, {**_enhance_flags(args), "enhance.train.epochs": args.epochs, "enhance.train.out": args.out or None}
    )
    from darkaction.enhancement.train import enhance_train

    path = enhance_train(cfg)
    print(f"weights written to {path} (use with --set enhance.weights={path})")
    return 0


def _run_enhance_image(args: argparse.Namespace) -> int:
    from darkaction.enhancement.run import enhance_images

    files = enhance_images(
        args.inputs, args.weights, args.out, args.method, args.raw, args.scale_factor, args.precision
    )
    print(f"wrote {len(files)} files to {args.out}")
    return 0


def _add_sample(sub) -> None:
    p = sub.add_parser(
        "sample",
        help="draw the frames a sampling strategy picks from a video as a film strip",
        description="Decode a video, pick T frames with a sampler (delta, constant, length, variable, uniform, "
        "consecutive) and draw them as a PNG film strip; blank padding frames are black tiles crossed in red.",
    )
    _config_args(p)
    p.add_argument("--video", required=True, help="video file (or img_%%05d.jpg frame folder)")
    p.add_argument("--strategy", help="sampling strategy (sampling.strategy)")
    p.add_argument("--out", default="strip.png", help="output PNG (default: strip.png)")
    p.add_argument("--T", type=int, help="frames the network takes (sampling.T)")
    p.add_argument("--seed", type=int, default=0, help="random seed for the sampler's draws")
    p.add_argument("--views", type=int, default=1, help="draw this many test views (one strip row block each)")
    p.add_argument("--no-gain", action="store_true", help="show frames as stored (no display brightening)")
    p.set_defaults(func=_run_sample)


def _run_sample(args: argparse.Namespace) -> int:
    cfg = _load(args, {"sampling.strategy": args.strategy or None, "sampling.T": args.T})
    import numpy as np

    from darkaction.data.sampling import film_strip, resolve_alpha, sample_views, sampler_params
    from darkaction.data.video import decode
    from darkaction.utils import atomic_write_bytes

    frames, _ = decode(args.video, resize="short_side", short_side=96)
    n, T = len(frames), cfg.sampling.T
    if isinstance(cfg.sampling.alpha, str) and not cfg.sampling.n_max:
        # alpha: auto without a training index: this video's own length stands in for N_max
        cfg.sampling.alpha = resolve_alpha(cfg.sampling.alpha, n, T)
    params = sampler_params(cfg.sampling)
    views = sample_views(cfg.sampling.strategy, n, T, max(1, args.views), args.seed, **params)
    strips = []
    for v, idx in enumerate(views):
        title = f"{args.video}  {cfg.sampling.strategy}  N={n} T={T}  view {v}  blanks={int((idx < 0).sum())}"
        strips.append(film_strip(frames, idx, title=title, gain=not args.no_gain))
    import cv2

    ok, png = cv2.imencode(".png", cv2.cvtColor(np.concatenate(strips, axis=0), cv2.COLOR_RGB2BGR))
    if not ok:
        raise DarkActionError(f"could not encode the film strip for {args.out}")
    atomic_write_bytes(args.out, png.tobytes())
    print(f"{cfg.sampling.strategy}: {' | '.join(' '.join(map(str, idx.tolist())) for idx in views)}")
    print(f"film strip written to {args.out}")
    return 0


def _add_model_info(sub) -> None:
    p = sub.add_parser(
        "model-info",
        help="parameters, FLOPs per clip and output shapes of the configured model",
        description="Build the configured model (without weights) for a clip of in_channels x sampling.T x "
        "augment.height x augment.width and print its parameters (total, trainable, per part), forward FLOPs per clip "
        "and the output shape of every stage.",
    )
    _config_args(p)
    p.add_argument("--classes", type=int, default=None, help="number of classes (default: data.source.classes or 6)")
    p.add_argument("--json", dest="as_json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_run_model_info)


def _run_model_info(args: argparse.Namespace) -> int:
    cfg = _load(args)
    from darkaction.models.info import format_model_info, model_info

    info = model_info(cfg, num_classes=args.classes)
    if args.as_json:
        import json

        print(json.dumps(info, indent=2))
    else:
        print(format_model_info(info))
    return 0


def _add_train(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a video classifier (Lightning: focal loss, Ranger, one-cycle)",
        description="Train on the prepared, enhanced cache into runs/<name> (or run_dir): config.yaml, "
        "checkpoints/{best,last}.ckpt, metrics.csv, TensorBoard logs, curves.png, report.md. Multi-GPU / multi-node "
        "through Lightning DDP (works under torchrun and SLURM).",
    )
    _config_args(p)
    p.add_argument("--resume", action="store_true", help="continue a stopped run from checkpoints/last.ckpt")
    p.add_argument("--devices", help="Lightning devices (train.devices): 1, 4, auto, or a list like 0,1")
    p.add_argument("--num-nodes", type=int, help="number of nodes (train.num_nodes)")
    p.set_defaults(func=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    cfg = _load(args, {"train.devices": args.devices or None, "train.num_nodes": args.num_nodes or None})
    from darkaction.training.run import train, train_seconds

    run_dir = train(cfg, resume=args.resume)
    seconds = train_seconds(run_dir)
    took = f"; trained in {seconds / 60:.1f} min" if seconds is not None else ""
    print(f"run written to {run_dir} (checkpoints/best.ckpt, metrics.csv, report.md{took})")
    return 0


def _add_pretrain(sub) -> None:
    p = sub.add_parser(
        "pretrain",
        help="pretrain a backbone on the synthetic motion corpus (the CPU stand-in for IG65M weights)",
        description="Render the bright 14-motion synthetic corpus (synth.profile: pretrain), train a TGAP model on it "
        "and write its backbone in torchvision's key layout to a .pth file (+ .json with sha256, command and "
        "config) that model.pretrained loads. configs/pretrain.yaml unless --config; every stage resumes. With "
        "model.pretrained set it continues from that backbone (e.g. on a corpus with --set synth.gait_speed=shared).",
    )
    _config_args(p)
    p.add_argument("--out", help="weights file (default weights/<backbone>_w<width>_<name>.pth)")
    p.set_defaults(func=_run_pretrain)


def _config_or_default(args: argparse.Namespace, default) -> str:
    """--config, else the command's own config file beside the package (a clear error when neither exists)."""
    if args.config is not None:
        return args.config
    if not default.is_file():
        raise ConfigError(f"{default} not found; pass --config configs/{default.name}")
    return str(default)


def _run_pretrain(args: argparse.Namespace) -> int:
    from darkaction.config import load_config
    from darkaction.pretraining import DEFAULT_CONFIG, pretrain

    path = _config_or_default(args, DEFAULT_CONFIG)
    words = ["darkaction pretrain", *(["--config", str(args.config)] if args.config else [])]
    words += [f"--set {o}" for o in args.overrides] + (["--out", args.out] if args.out else [])
    command = " ".join(words)
    pretrain(load_config(path, list(args.overrides)), out=args.out, command=command)
    return 0


def _add_evaluate(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="evaluate a run with k test views per video averaged",
        description="Top-1, mean class accuracy, per-class accuracy, clip- vs video-level accuracy, confusion matrix "
        "and BERT attention plots; writes results.json and the report into the run directory. The run's own "
        "config is used; --set data.prepared=DIR (and data.source.*) scores it on another prepared dataset with the "
        "same classes, into results_<split>_<DIR name>.json.",
    )
    _config_args(p)
    p.add_argument("run", metavar="RUN_DIR_OR_CKPT", help="a run directory (runs/<name>) or a .ckpt file")
    p.add_argument("--views", type=int, help="views per video, softmax averaged (default eval.views)")
    p.add_argument("--strategy", help="test sampling strategy (default sampling.test_strategy or sampling.strategy)")
    p.add_argument("--split", default="test", choices=["test", "val", "train"], help="which split (default test)")
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                   help="also classify every view left-right mirrored and average (default eval.flip)")  # fmt: skip
    p.add_argument("--test-rates", choices=["own", "train"],
                   help="the views' rates: the video's own length's (the paper) or the training lengths' "
                   "(default sampling.test_rates)")  # fmt: skip
    p.set_defaults(func=_run_evaluate)


def _run_evaluate(args: argparse.Namespace) -> int:
    from darkaction.evaluation.evaluate import evaluate

    if args.config:
        raise ConfigError(
            "evaluate uses the run's own config; to score it on other data give --set data.prepared=... (and "
            "data.source.*), prepared and enhanced with the run's config and those overrides"
        )
    res = evaluate(args.run, views=args.views, strategy=args.strategy, split=args.split, data=args.overrides,
                   flip=args.flip, test_rates=args.test_rates)  # fmt: skip
    top5 = f", top-5 {100 * res['top5']:.2f} %" if res.get("top5") is not None else ""
    print(
        f"{res['split']}: top-1 {100 * res['top1']:.2f} %{top5}, "
        f"mean class accuracy {100 * res['mean_class_acc']:.2f} %, "
        f"clip-level top-1 {100 * res['clip_top1']:.2f} % ({res['n_test_videos']} videos, {res['views']} views"
        f"{' and their mirrors' if res.get('flip') else ''}, {res['strategy']})"
    )
    for name, pc in res["per_class"].items():
        acc = "-" if pc["acc"] is None else f"{100 * pc['acc']:.1f} %"
        print(f"  {name:>10}: {acc} of {pc['n']}")
    bands = [b for b in res.get("by_brightness", []) if b["n"]]
    if bands:
        print("  by source brightness (mean 8-bit level): " + ", ".join(
            f"{b['band']}: {100 * b['acc']:.1f} % of {b['n']}" for b in bands))  # fmt: skip
    return 0


def _add_predict(sub) -> None:
    p = sub.add_parser(
        "predict",
        help="classify videos, long videos in windows, or a live stream, with a trained run",
        description="Decode, enhance with the run's enhancer, sample k views, print the label and class probabilities. "
        "With --window, label sliding windows of a long video or a live source (rtsp:// or http:// URL, a device "
        "such as /dev/video0 with --input-format v4l2, or - for a stream piped on stdin) as the frames arrive, "
        "and write windows.csv, windows.json (with the merged segments) and timeline.png into --out.",
    )
    _config_args(p)
    p.add_argument("videos", nargs="+", metavar="VIDEO", help="video files, frame folders, URLs, devices or -")
    p.add_argument("--run", required=True, help="run directory (or one .ckpt file) to predict with")
    p.add_argument("--views", type=int, default=5, help="views averaged per video or window (default 5)")
    p.add_argument("--top-k", type=int, default=5, help="classes listed per prediction (default 5)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.add_argument("--window", type=float, default=0.0, metavar="S", help="label windows of S seconds")
    p.add_argument("--stride", type=float, default=0.0, metavar="S", help="seconds between windows (default S/2)")
    p.add_argument("--out", default="", help="folder for the window outputs (default predictions/<video name>)")
    p.add_argument("--fps", type=float, default=0.0, help="frame rate when the source does not say (default 30)")
    p.add_argument("--input-format", default="", help="FFmpeg input format for devices (e.g. v4l2, avfoundation)")
    p.add_argument(
        "--precision",
        choices=["run", "fp32"],
        default="run",
        help="run: the run's own (bf16 where the CPU has it); fp32: exact, e.g. to compare with exports",
    )
    p.set_defaults(func=_run_predict)


def _run_predict(args: argparse.Namespace) -> int:
    import json

    if args.window:
        return _predict_windows(args)
    live = [v for v in args.videos if "://" in v or v == "-" or v.startswith("/dev/")]
    if live:
        raise ConfigError(f"{redact(live[0])} is a live source: label it in windows with --window S (e.g. --window 4)")
    from darkaction.evaluation.predict import predict

    results = predict(args.videos, args.run, views=args.views, top_k=args.top_k, precision=args.precision)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for r in results:
        print(f"{r['video']}: {r['label']} ({100 * r['prob']:.1f} %)")
        for t in r["top_k"]:
            print(f"  {t['label']:>10} {100 * t['prob']:5.1f} %")
        for w in r.get("warnings", []):
            print(f"  warning: {w}")
    return 0


def redact(source: str) -> str:
    """A source name safe to print and write: the user:password of a URL (rtsp://user:pass@cam) removed."""
    import re

    return re.sub(r"://[^/@\s]+@", "://", str(source))


def _predict_windows(args: argparse.Namespace) -> int:
    import json
    import re
    import signal

    from darkaction.inference import FrameStream, Recognizer
    from darkaction.inference.timeline import (
        Thumbnails,
        csv_header,
        csv_row,
        merge_segments,
        plot_timeline,
        write_windows,
    )

    if len(args.videos) != 1:
        raise ConfigError("--window labels one video or stream at a time; give one VIDEO")
    stride = args.stride or args.window / 2
    rec = Recognizer.from_run(args.run, precision=args.precision)
    source = args.videos[0]
    shown = redact(source)
    stream = FrameStream(source, fps=args.fps or None, input_format=args.input_format or None)
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(shown).stem if "://" not in shown else shown.split("://")[1])
    out = Path(args.out or Path("predictions") / (name.strip("_") or "stream"))
    out.mkdir(parents=True, exist_ok=True)
    windows: list[dict] = []
    thumbs = Thumbnails()

    def stop(signum, frame):  # a service manager's SIGTERM ends the run like Ctrl-C: the windows so far are kept
        raise KeyboardInterrupt

    old_handler = signal.signal(signal.SIGTERM, stop)
    try:
        with open(out / "windows.csv", "w", newline="") as table:  # grows as windows arrive: nothing lost on a kill
            table.write(csv_header(rec.classes))
            for w in rec.windows(stream, window=args.window, stride=stride, views=args.views, top_k=args.top_k):
                thumbs.add(w["index"], w.pop("thumbnail"))
                windows.append(w)
                table.write(csv_row(w, rec.classes))
                table.flush()
                if not args.json:
                    print(f"[{w['start']:8.2f} - {w['end']:8.2f} s] {w['label']:>10} {100 * w['prob']:5.1f} %"
                          f"  (latency {1000 * w['latency']:.0f} ms)", flush=True)  # fmt: skip
    except KeyboardInterrupt:
        print("interrupted: writing the windows so far", file=sys.stderr)
    finally:
        signal.signal(signal.SIGTERM, old_handler)
    if not windows:
        raise DataError(f"{redact(stream.name)}: no window could be labelled ({stream.error or 'no frames'})")
    segments = merge_segments(windows)
    files = write_windows(windows, segments, out, source=shown, classes=rec.classes, fps=stream.fps,
                          window=args.window, stride=stride, views=args.views, error=stream.error)  # fmt: skip
    png = plot_timeline(thumbs.attach(windows), rec.classes, out / "timeline.png", title=f"{shown}: {rec.checkpoint}")
    if args.json:
        print(json.dumps({"windows": windows, "segments": segments, "error": stream.error}, indent=2))
    else:
        print("segments:")
        for s in segments:
            print(f"  {s['start']:8.2f} - {s['end']:8.2f} s  {s['label']:>10}  ({s['windows']} windows, "
                  f"mean {100 * s['prob']:.1f} %)")  # fmt: skip
        print(f"wrote {files['csv']}, {files['json']}, {png}")
    if stream.error:
        print(f"error: {shown}: the source stopped early ({redact(stream.error)}); the {len(windows)} windows before "
              "it are kept above and in the files", file=sys.stderr)  # fmt: skip
        return 1
    return 0


def _add_export(sub) -> None:
    p = sub.add_parser(
        "export",
        help="export a run's enhancer and classifier to ONNX or TorchScript",
        description="Write the run's Zero-DCE enhancer and its classifier (with the BERT attention as a second output) "
        "as ONNX or TorchScript files plus recognizer.json (config and class names). `predict --run FOLDER` then "
        "runs them. Each file is checked against PyTorch; the max abs difference is printed and recorded.",
    )
    _config_args(p)
    p.add_argument("run", metavar="RUN_DIR_OR_CKPT", help="a run directory or a .ckpt file")
    p.add_argument("--format", choices=["onnx", "torchscript"], default="onnx")
    p.add_argument("--out", default="", help="output folder (default <run>/export-<format>)")
    p.set_defaults(func=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    from darkaction.inference.export import export_run
    from darkaction.inference.recognizer import resolve_run
    from darkaction.utils import read_json

    out = Path(args.out) if args.out else resolve_run(args.run)[0] / f"export-{args.format}"
    files = export_run(args.run, out, fmt=args.format)
    diff = read_json(files["record"])["max_abs_diff"]
    for name, path in files.items():
        print(f"{name:>10}: {path}")
    print("max abs difference to PyTorch: " + ", ".join(f"{k} {v:.3g}" for k, v in diff.items()))
    return 0


def _add_serve(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="a local web server: POST /predict with a video, or upload one on the page at /",
        description="Serve a trained run over HTTP (FastAPI + uvicorn): POST /predict (multipart field 'file') "
        "returns the label, probabilities, windows and segments as JSON; GET / is a page to upload a clip and see "
        "its timeline and enhanced thumbnails. Needs pip install 'darkaction[serve]'.",
    )
    _config_args(p)
    p.add_argument("run", metavar="RUN_DIR_OR_CKPT", help="a run directory, a .ckpt file or an export folder")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--max-upload-mb", type=float, default=200.0, help="larger uploads get 413 (default 200)")
    p.add_argument("--window", type=float, default=4.0, help="seconds per timeline window (default 4)")
    p.add_argument("--stride", type=float, default=2.0, help="seconds between windows (default 2)")
    p.add_argument("--precision", choices=["run", "fp32"], default="run", help="as for predict")
    p.set_defaults(func=_run_serve)


def _run_serve(args: argparse.Namespace) -> int:
    from darkaction.inference.server import serve

    serve(args.run, host=args.host, port=args.port, max_upload_mb=args.max_upload_mb, window=args.window,
          stride=args.stride, precision=args.precision)  # fmt: skip
    return 0


def _add_experiment(sub) -> None:
    p = sub.add_parser(
        "experiment",
        help="run one of the paper's tables (1-4, all, fig1) or an ablation and judge the paper's claims",
        description="Train and evaluate every row of a table as its own run (resumable per row and seed: finished "
        "ones are not re-run), then write <out>/tableN.md (fig1.md, timenorm.md), .csv, .json and .png: per-seed "
        "top-1, the mean with a 95 % "
        "interval and the paired difference from the full method, beside the paper's reported numbers; and "
        "<out>/claims.md (.json, .png): each of the paper's claims with its measured effect and a verdict. "
        "`experiment all` runs tables 1-4; `experiment claims` only rewrites the verdicts from what is measured. "
        "--config replaces the preset's base config; --set overrides apply to every row.",
    )
    _config_args(p)
    p.add_argument(
        "table",
        help="1 (enhancement), 2 (sampling), 3 (architecture), 4 (HMDB51 + ARID), fig1 (Figure 1: C3D, 3D-ResNeXt-101, "
        "3D-SqueezeNet), timenorm (ablation: model.time_norm none / l2 / rms), all (tables 1-4), claims (verdicts "
        "only)",
    )
    p.add_argument("--data", help="main dataset folder (cpu: a synthetic dataset, generated when omitted; paper: ARID)")
    p.add_argument("--preset", choices=["cpu", "paper"], default="cpu", help="cpu: synthetic, CPU-sized; paper: GPU")
    p.add_argument("--seeds", type=int, help="runs per row, seeds 0..N-1 (default: cpu 3, paper 1)")
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="(row, seed) trainings side by side, each a process with one torch thread (default 1: one process "
        "using every core); see docs/results.md for what it gains",
    )
    p.add_argument("--out", default="runs/experiments", help="folder for the tables and the runs")
    p.add_argument("--rows", help="comma-separated row keys to run, e.g. delta,constant (default: all)")
    p.add_argument("--extra", help="Table 4's additional domain (paper: the HMDB51 folder)")
    p.set_defaults(func=_run_experiment)


def _run_experiment(args: argparse.Namespace) -> int:
    from darkaction.experiments.claims import write_claims
    from darkaction.experiments.runner import experiment

    if args.table == "claims":
        paths = write_claims(args.out)
        print(paths["md"].read_text())
        for kind, path in paths.items():
            print(f"{kind}: {path}")
        return 0
    rows = [r.strip() for r in args.rows.split(",") if r.strip()] if args.rows else None
    if args.table == "all" and rows:
        raise ConfigError("--rows selects rows of one table; run `experiment N --rows ...` instead of `all`")
    failed = False
    for table in (1, 2, 3, 4) if args.table == "all" else (args.table,):
        res = experiment(
            table,
            data=args.data,
            preset=args.preset,
            seeds=args.seeds,
            out=args.out,
            rows=rows,
            config=args.config,
            overrides=list(args.overrides),
            extra=args.extra,
            jobs=args.jobs,
        )
        print(res["paths"]["md"].read_text())
        for kind, path in res["paths"].items():
            print(f"{kind}: {path}")
        failed = failed or any(r.status == "failed" for r in res["rows"])
    print(Path(args.out, "claims.md").read_text())
    return 1 if failed else 0


def _add_demo(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="the whole pipeline on the built-in synthetic dataset",
        description="synth -> prepare -> enhance train -> enhance -> train -> evaluate (5 views) -> report, sized "
        "for a 2-core CPU (configs/demo.yaml unless --config). Each stage skips or resumes when already done.",
    )
    _config_args(p)
    p.set_defaults(func=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from darkaction.config import load_config
    from darkaction.pipeline import DEFAULT_CONFIG, demo

    demo(load_config(_config_or_default(args, DEFAULT_CONFIG), list(args.overrides)))
    return 0


def _add_bench(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="run the throughput benchmarks under benchmarks/",
        description="Run benchmarks/bench_<NAME>.py from a source checkout. Each reports ratios against a plain "
        "baseline measured in the same run (the machine may be shared and noisy) and writes runs/bench/<NAME>.json.",
    )
    _config_args(p)
    p.add_argument("names", nargs="*", metavar="NAME", help="benchmarks to run (default: all), e.g. data enhance")
    p.add_argument("--quick", action="store_true", help="smaller sizes for a smoke run")
    p.add_argument("--list", action="store_true", help="list the available benchmarks and exit")
    p.set_defaults(func=_run_bench)


def _run_bench(args: argparse.Namespace) -> int:
    from darkaction.benchmarking import available, bench, find_benchmarks

    folder = find_benchmarks()
    if args.list:
        print("\n".join(available(folder)))
        return 0
    status = bench(args.names, quick=args.quick, folder=folder)
    failed = [n for n, rc in status.items() if rc != 0]
    if failed:
        print(f"benchmarks failed: {', '.join(failed)}")
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="darkaction",
        description="Action recognition in dark videos: Zero-DCE enhancement, delta sampling, R(2+1)D-BERT.",
    )
    from darkaction import __version__

    parser.add_argument("--version", action="version", version=f"darkaction {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in (
        _add_synth,
        _add_prepare,
        _add_stats,
        _add_enhance,
        _add_sample,
        _add_model_info,
        _add_train,
        _add_pretrain,
        _add_evaluate,
        _add_predict,
        _add_export,
        _add_serve,
        _add_experiment,
        _add_demo,
        _add_bench,
    ):
        add(sub)
    return parser


@contextlib.contextmanager
def library_messages():
    """The library logs through `logging` (logger "darkaction"); while a command runs, its INFO messages go plainly
    to the current stdout. The handler and level are taken back afterwards, so calling `main` from Python (a test,
    a notebook) leaves the caller's logging as it was."""
    logger = logging.getLogger("darkaction")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with library_messages():
            return int(args.func(args) or 0)
    except DarkActionError as e:
        print(f"darkaction {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"darkaction {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
