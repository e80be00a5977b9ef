"""`darkaction` command line: argument parsing only. Each subcommand calls the stage function of the same name.

Every subcommand takes `--config FILE` and repeatable `--set section.key=value` overrides. A `DarkActionError`
(bad input, unknown config key, a feature not implemented yet) is printed without a traceback and exits with 2.
Heavy libraries (torch, Lightning) are imported inside the handlers so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from darkaction.errors import DarkActionError, NotImplementedYet

EXIT_USAGE = 2


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", metavar="FILE", help="YAML config (default: built-in defaults)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config value, e.g. --set train.epochs=3 (repeatable)",
    )


def _load(args: argparse.Namespace, extra: list[str] | None = None):
    from darkaction.config import load_config

    return load_config(args.config, list(args.overrides) + list(extra or []))


def _not_yet(what: str, issue: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        raise NotImplementedYet(f"'darkaction {what}' is not implemented yet ({issue}); nothing was done.")

    return run


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
    p.set_defaults(func=_run_synth)


def _run_synth(args: argparse.Namespace) -> int:
    extra = []
    if args.out:
        extra.append(f"synth.out={args.out}")
    if args.seed is not None:
        extra.append(f"synth.seed={args.seed}")
    if args.preview:
        extra.append("synth.preview=true")
    cfg = _load(args, extra)
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
    p.set_defaults(func=_not_yet("prepare", "issue 3"))


def _add_stats(sub) -> None:
    p = sub.add_parser("stats", help="dataset statistics: clips per class, frame lengths, brightness (PNG + JSON)")
    _config_args(p)
    p.set_defaults(func=_not_yet("stats", "issue 3"))


def _add_enhance(sub) -> None:
    p = sub.add_parser(
        "enhance",
        help="low-light enhancement: enhance the frame cache, train Zero-DCE, or enhance images",
        description="Enhance a prepared frame cache with a frozen enhancer (zero-dce, zero-dce++, gamma, identity, "
        "external). Subcommands: 'train' trains Zero-DCE, 'image' enhances still images.",
    )
    _config_args(p)
    p.set_defaults(func=_not_yet("enhance", "issue 4"))


def _add_sample(sub) -> None:
    p = sub.add_parser("sample", help="draw the frames a sampling strategy picks from a video as a film strip")
    _config_args(p)
    p.set_defaults(func=_not_yet("sample", "issue 5"))


def _add_model_info(sub) -> None:
    p = sub.add_parser("model-info", help="parameters, FLOPs per clip and output shapes of the configured model")
    _config_args(p)
    p.set_defaults(func=_not_yet("model-info", "issue 6"))


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a video classifier (Lightning: focal loss, Ranger, one-cycle)")
    _config_args(p)
    p.set_defaults(func=_not_yet("train", "issue 7"))


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="evaluate a run with k test views per video averaged")
    _config_args(p)
    p.set_defaults(func=_not_yet("evaluate", "issue 7"))


def _add_predict(sub) -> None:
    p = sub.add_parser("predict", help="classify videos with a trained run")
    _config_args(p)
    p.set_defaults(func=_not_yet("predict", "issue 7"))


def _add_experiment(sub) -> None:
    p = sub.add_parser("experiment", help="run one of the paper's tables (1-4) and write it with a bar chart")
    _config_args(p)
    p.set_defaults(func=_not_yet("experiment", "issue 8"))


def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="the whole pipeline on the built-in synthetic dataset")
    _config_args(p)
    p.set_defaults(func=_not_yet("demo", "issue 7"))


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
    from darkaction.bench import available, bench, find_benchmarks

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
        _add_evaluate,
        _add_predict,
        _add_experiment,
        _add_demo,
        _add_bench,
    ):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except DarkActionError as e:
        print(f"darkaction {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"darkaction {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
