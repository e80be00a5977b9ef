"""`experiment(...)`: run every row of one of the paper's tables, each as its own training run, then write the table.

    experiment(2, data="data/synth", preset="cpu", seeds=2, out="runs/experiments")
      -> <out>/table2.md, table2.csv, table2.png and per run <out>/runs/<config hash>/seed<k>/{run/, results.json}

For every row and seed: resolve the config (`tables.py`), prepare the frame cache, train Zero-DCE when its weights are
missing, enhance, compute optical flow when the row needs it, train, evaluate (on the validation split when the
config holds one out, the paper's 1,470 / 367, with the labelled test split beside it; else on the test split), and
write `results.json`. A (row, seed) whose `results.json` exists is not run again, so an interrupted table resumes
where it stopped; an interrupted training resumes from its last checkpoint. Rows with identical configs (the full
method is in Tables 1-3) share one run directory. A row that cannot run (no EnlightenGAN file, no HMDB51 folder) is
reported as "not run: <reason>"; one that crashes is "failed: <error>" (traceback in `error.txt`) and the other rows
still run.

Every stage is injectable (`Stages`), so the runner is tested without the real training.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import statistics
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from darkaction.config import Change, Config, DataSource, SynthConfig, load_config, to_dict
from darkaction.errors import ConfigError, DataError
from darkaction.experiments.tables import BRIGHT_SYNTH, PRESET_EXTRAS, PRESET_FILES, Row, Table, get_table, select_rows
from darkaction.utils import read_json, write_json

HMDB_CLASSES = ["run", "sit", "stand", "turn", "walk", "wave"]
RESULTS = "results.json"
# seeds per row unless --seeds: one seed ranks nothing at CPU scale (runs of one config differ by 25 points); the
# paper preset's GPU runs are the user's to multiply
PRESET_SEEDS = {"cpu": 3, "paper": 1}


# ---------------------------------------------------------------------------------------------- stages


def _prepare(cfg: Config) -> Any:
    from darkaction.data.prepare import prepare

    return prepare(cfg)


def _enhance(cfg: Config) -> Any:
    """Train Zero-DCE first unless weights trained with these settings exist, then enhance the cache (both resumable /
    skipped when done)."""
    if cfg.enhance.method in ("zero-dce", "zero-dce++") and not cfg.enhance.weights:
        from darkaction.enhancement.base import default_weights_path
        from darkaction.enhancement.train import enhance_train, is_trained

        if not is_trained(default_weights_path(cfg).parent, cfg.enhance.train, cfg.enhance.method):
            enhance_train(cfg)
    from darkaction.enhancement.run import enhance

    return enhance(cfg)


def _flow(cfg: Config) -> Any:
    from darkaction.training.flow_cache import build_flow_cache

    return build_flow_cache(cfg)


def _train(cfg: Config, resume: bool) -> Path:
    from darkaction.training.run import train

    return train(cfg, resume=resume)


def _evaluate(run_dir: Path, split: str = "test") -> dict:
    from darkaction.evaluation.evaluate import evaluate

    return evaluate(run_dir, split=split)


def _synth(cfg: SynthConfig) -> Path:
    from darkaction.data.synthetic import synth

    return synth(cfg)


@dataclass
class Stages:
    """The pipeline stages the runner calls; tests replace some of them."""

    prepare: Callable[[Config], Any] = _prepare
    enhance: Callable[[Config], Any] = _enhance
    flow: Callable[[Config], Any] = _flow
    train: Callable[[Config, bool], Path] = _train
    evaluate: Callable[..., dict] = _evaluate  # (run_dir, split="test") -> results
    synth: Callable[[SynthConfig], Path] = _synth


@dataclass
class RowResult:
    """Measured numbers (percent) of one row over its seeds; `status` ok | not run | failed."""

    table: int
    key: str
    name: str
    paper: float
    status: str = "ok"
    reason: str = ""
    runs: list[dict] = field(default_factory=list)  # one results.json dict per finished seed

    def _values(self, key: str) -> list[float]:
        return [r[key] for r in self.runs if r.get(key) is not None]

    def mean(self, key: str = "top1") -> float | None:
        v = self._values(key)
        return statistics.fmean(v) if v else None

    def std(self, key: str = "top1") -> float | None:
        v = self._values(key)
        return statistics.stdev(v) if len(v) >= 2 else None


# ---------------------------------------------------------------------------------------------- configs


def preset_file(preset: str) -> Path:
    """configs/<preset>.yaml of this checkout; a ConfigError when the preset is unknown or the file is absent."""
    if preset not in PRESET_FILES:
        raise ConfigError(f"unknown preset {preset!r}; use one of {', '.join(PRESET_FILES)}")
    path = Path(__file__).resolve().parents[1] / "configs" / PRESET_FILES[preset]  # package data
    if not path.is_file():
        raise ConfigError(f"preset file {path} not found; pass the base config with --config FILE instead")
    return path


def run_key(cfg: Config) -> str:
    """12 hex of the sha256 of everything that decides a run's result (not its name, folder or worker counts)."""
    d = to_dict(cfg)
    for k in ("name", "run_dir", "experiment"):
        d.pop(k, None)
    d["train"].pop("progress", None)
    d["train"].pop("workers", None)
    d["train"].pop("profiler", None)
    d["cache"].pop("workers", None)
    d["synth"] = {}
    # only what differs from the defaults: a config field added later (at its default) keeps every key, so a table
    # resumes instead of training all its rows again
    return hashlib.sha256(yaml.safe_dump(_changed(d, to_dict(Config())), sort_keys=True).encode()).hexdigest()[:12]


def _changed(d: dict, default: dict) -> dict:
    """The entries of nested dict `d` whose values differ from `default`'s."""
    out = {}
    for k, v in d.items():
        ref = default.get(k) if isinstance(default, dict) else None
        if isinstance(v, dict) and isinstance(ref, dict):
            sub = _changed(v, ref)
            if sub:
                out[k] = sub
        elif k not in default or v != ref:
            out[k] = v
    return out


@dataclass
class Plan:
    """Everything a table run needs to know besides the rows: where data lives and what the base config is."""

    preset: str
    out: Path
    data: Path
    extra: Path | None
    config: str | None
    overrides: list[Change]
    notes: list[str] = field(default_factory=list)

    def data_overrides(self, row: Row) -> list[tuple[str, Any]]:
        fmt = "synth" if self.preset == "cpu" else None
        ov: list[tuple[str, Any]] = [("data.source.root", str(self.data))]
        ov += [("data.source.format", fmt)] if fmt else []
        if row.extra_data and self.extra is not None:
            if self.preset == "cpu":
                src = DataSource(format="folders", root=str(self.extra))
            else:
                # every clip of the six classes (1,420 in HMDB51), as the paper adds them to ARID's training set
                src = DataSource(format="hmdb51", root=str(self.extra), classes=list(HMDB_CLASSES), split="all")
            ov.append(("data.extra_train", [src]))
            ov.append(("data.prepared", str(self.out / "prepared" / "with-extra")))
        else:
            ov.append(("data.prepared", str(self.out / "prepared" / "main")))
        # one enhancer for every table, trained on the main data's frames only (as the paper trains it on ARID)
        ov.append(("enhance.train.out", str(self.out / "enhancers")))
        return ov

    def loaded(self, row: Row, seed: int) -> Config:
        """The row's config as the preset, the row and the user's overrides give it (in that order; the data
        folders last)."""
        base = self.config or str(preset_file(self.preset))
        ov = [*PRESET_EXTRAS.get(self.preset, ()), *row.overrides, *self.overrides, *self.data_overrides(row)]
        ov += [("seed", seed), ("train.seed", seed), ("experiment.preset", self.preset)]
        return load_config(base, ov)

    def config_for(self, row: Row, seed: int) -> Config:
        cfg = self.loaded(row, seed)
        if lacks_warm_up(cfg):
            # SlowFast / EfficientNet / MRAN rows have no TGAP warm-up: they train from scratch for the same total
            # number of epochs as the warmed-up rows
            cfg.train.epochs += cfg.train.pretrain_epochs
            cfg.train.pretrain_epochs = 0
        if lacks_pretrained(cfg):
            cfg.model.pretrained = ""  # an R(2+1)D file fits no other backbone: these rows train from scratch
        if cfg.enhance.train.out:
            cfg.enhance.train.out = str(Path(cfg.enhance.train.out) / cfg.enhance.method)
        return cfg


def lacks_warm_up(cfg: Config) -> bool:
    """The config asks for a backbone warm-up (`train.pretrain_epochs`) that its model does not have."""
    from darkaction.training.run import can_warm_up

    return bool(cfg.train.pretrain_epochs) and not can_warm_up(cfg)


def lacks_pretrained(cfg: Config) -> bool:
    """The preset's pretrained R(2+1)D backbone (`model.pretrained`, a file or "required") does not fit the row's
    backbone."""
    from darkaction.models.pretrained import names_weights

    return names_weights(cfg.model.pretrained) and cfg.model.backbone not in ("r2plus1d_18", "r2plus1d_34")


def _bright_synth(plan: Plan, stages: Stages) -> Path:
    """Render the brighter, cleaner synthetic dataset (Table 4's stand-in for HMDB51) beside the results."""
    meta = plan.data / "metadata.json"
    base = SynthConfig(**read_json(meta)["config"]) if meta.is_file() else SynthConfig()
    cfg = dataclasses.replace(
        base,
        out=str(plan.out / "data" / "synth-bright"),
        seed=base.seed + BRIGHT_SYNTH["seed_offset"],
        brightness=list(BRIGHT_SYNTH["brightness"]),
        noise=BRIGHT_SYNTH["noise"],
        dark_fraction=0.0,  # well lit throughout, unlike the dark profile it copies
        profile="default",
    )
    if not (Path(cfg.out) / "metadata.json").is_file():
        stages.synth(cfg)
    return Path(cfg.out) / "videos"


# ---------------------------------------------------------------------------------------------- running


def _not_runnable(plan: Plan, row: Row, cfg: Config) -> str:
    if row.external and not cfg.enhance.external:
        return (
            "EnlightenGAN needs a local model file (ONNX or TorchScript): no weights can be downloaded here; "
            "pass --set enhance.external=FILE"
        )
    if row.external and not Path(cfg.enhance.external).is_file():
        return f"enhance.external={cfg.enhance.external} does not exist"
    if row.extra_data and plan.extra is None:
        return "needs the additional HMDB51 data: pass --extra HMDB51_ROOT (the folder with the videos and splits)"
    return ""


def _percent(x: Any) -> float | None:
    """Metrics come as fractions in [0, 1]; tables show percent like the paper."""
    return None if x is None else round(100.0 * float(x), 4)


def _unseeded(cfg: Config) -> Config:
    """The config with its seeds zeroed: all seeds of one row share the folder named by its key."""
    return dataclasses.replace(cfg, seed=0, train=dataclasses.replace(cfg.train, seed=0))


def _prepare_data(row: Row, cfg: Config, stages: Stages, done: set) -> None:
    """The data stages a (row, seed) needs (frame cache, enhanced cache, optical flow), each once per call."""
    prep_key = ("prepare", cfg.data.prepared)
    if prep_key not in done:
        stages.prepare(cfg)
        done.add(prep_key)
    enh_key = ("enhance", cfg.data.prepared, cfg.enhance.method, cfg.enhance.gamma, cfg.enhance.external)
    if cfg.enhance.method != "identity" and enh_key not in done:
        stages.enhance(cfg)
        done.add(enh_key)
    flow_key = ("flow", *enh_key)
    if row.flow and flow_key not in done:
        stages.flow(cfg)
        done.add(flow_key)


def _predictions(metrics: dict) -> list[dict]:
    """Per test video what the paired statistics need: id, true and predicted class, recording group, length."""
    keep = ("video_id", "label", "pred", "group", "n_frames")
    return [{k: p.get(k) for k in keep} for p in metrics.get("predictions") or []]


def _train_and_score(row: Row, cfg: Config, seed_dir: Path, stages: Stages) -> dict:
    """Train one (row, seed) (resuming from its last checkpoint), evaluate it and write its results.json."""
    cfg = copy.deepcopy(cfg)
    cfg.run_dir = str(seed_dir / "run")
    cfg.name = f"{row.key}-seed{cfg.seed}"
    resume = (seed_dir / "run" / "checkpoints" / "last.ckpt").is_file()
    run_dir = Path(stages.train(cfg, resume))
    # with a held-out validation part (the paper preset: its 1,470 / 367 split of the 1,837 training clips) that
    # split is the row's number, as the paper reports it; the labelled test CSV is scored beside it when present
    split = "val" if cfg.data.val_fraction > 0 else "test"
    metrics = stages.evaluate(run_dir, split)
    result = {
        "row": row.key,
        "name": row.name,
        "seed": cfg.seed,
        "split": split,
        "top1": _percent(metrics.get("top1")),
        "mean_class_acc": _percent(metrics.get("mean_class_acc")),
        "n_test_videos": metrics.get("n_test_videos"),
        "run_dir": str(run_dir),
        "config_key": seed_dir.parent.name,
        "predictions": _predictions(metrics),
    }
    if split == "val":
        try:
            test = stages.evaluate(run_dir, "test")
        except DataError:  # no labelled test videos in the index: the validation split is all there is
            test = {}
        if test:
            result["test_top1"] = _percent(test.get("top1"))
            result["n_test_csv_videos"] = test.get("n_test_videos")
    write_json(seed_dir / RESULTS, result)
    return result


def _job(args: tuple) -> tuple[str, Any]:
    """A pool worker's (row, seed): ("ok", result) or ("failed" | "not run", (reason, traceback))."""
    row, cfg, seed_dir, stages = args
    try:
        return "ok", _train_and_score(row, cfg, seed_dir, stages)
    except (ConfigError, DataError) as e:
        return "not run", (str(e), "")
    except Exception as e:  # noqa: BLE001 - reported by the parent like a crash in the serial path
        return "failed", (f"{type(e).__name__}: {e}", traceback.format_exc())


def _init_worker(threads: int) -> None:
    """One torch thread per process: several trainings side by side must not oversubscribe the cores."""
    import os

    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)


def run_table(
    table: Table, plan: Plan, rows: list[Row], seeds: int, stages: Stages, progress: bool, jobs: int = 1
) -> list[RowResult]:
    """Every (row, seed) of `rows`: finished ones are read back, the data stages run here one after another, then
    the trainings, in this process (`jobs` 1) or in `jobs` processes of one torch thread each."""
    from tqdm import tqdm

    from darkaction.utils import progress_bar

    results = [RowResult(table.number, r.key, r.name, r.paper) for r in rows]
    pending: list[tuple[int, Config, Path]] = []
    done: set = set()
    bar = progress_bar(total=len(rows) * seeds, desc=table.stem, unit="run", disable=not progress)

    def fail(i: int, seed: int, seed_dir: Path, status: str, reason: str, trace: str = "") -> None:
        results[i].status, results[i].reason = status, reason
        if trace:
            seed_dir.mkdir(parents=True, exist_ok=True)
            (seed_dir / "error.txt").write_text(trace)
            where = f"{table.label} row '{rows[i].key}' seed {seed}"
            tqdm.write(f"{where} failed: {reason} (see {seed_dir}/error.txt)")

    for i, row in enumerate(rows):
        for s in range(seeds):
            res = results[i]
            if res.status != "ok":  # an earlier seed showed the row cannot run
                bar.update(1)
                continue
            try:
                cfg = plan.config_for(row, s)
            except ConfigError as e:
                res.status, res.reason = "not run", str(e)
                bar.update(1)
                continue
            reason = _not_runnable(plan, row, cfg)
            if reason:
                res.status, res.reason = "not run", reason
                bar.update(1)
                continue
            seed_dir = plan.out / "runs" / run_key(_unseeded(cfg)) / f"seed{s}"
            if (seed_dir / RESULTS).is_file():
                res.runs.append(read_json(seed_dir / RESULTS))
                bar.update(1)
                continue
            try:
                _prepare_data(row, cfg, stages, done)
            except (ConfigError, DataError) as e:  # the row's setup or data cannot work: it did not run
                fail(i, s, seed_dir, "not run", str(e))
                bar.update(1)
                continue
            except Exception as e:  # noqa: BLE001 - one broken row must not lose the others' training
                fail(i, s, seed_dir, "failed", f"{type(e).__name__}: {e}", traceback.format_exc())
                bar.update(1)
                continue
            pending.append((i, cfg, seed_dir))

    def file(i: int, cfg: Config, seed_dir: Path, outcome: tuple[str, Any]) -> None:
        status, value = outcome
        if status == "ok":
            results[i].runs.append(value)
        elif results[i].status == "ok":
            fail(i, cfg.seed, seed_dir, status, *value)
        bar.set_postfix_str(f"{rows[i].key} seed {cfg.seed} {status}", refresh=False)
        bar.update(1)

    if jobs <= 1 or len(pending) <= 1:
        for i, cfg, seed_dir in pending:
            if results[i].status == "ok":
                file(i, cfg, seed_dir, _job((rows[i], cfg, seed_dir, stages)))
            else:
                bar.update(1)
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        for _, cfg, _ in pending:  # several bars in one terminal would garble it; the table's bar says the rest
            cfg.train.progress = False
        spawn = mp.get_context("spawn")  # fork after torch has run threads can hang the children
        with ProcessPoolExecutor(jobs, mp_context=spawn, initializer=_init_worker, initargs=(1,)) as pool:
            futures = {pool.submit(_job, (rows[i], cfg, d, stages)): (i, cfg, d) for i, cfg, d in pending}
            for fut in as_completed(futures):
                file(*futures[fut], fut.result())
    for r in results:  # seeds in order, whichever finished first
        r.runs.sort(key=lambda run: run.get("seed", 0))
    bar.close()
    return results


def experiment(
    table: int | str,
    data: str | Path | None = None,
    preset: str = "cpu",
    seeds: int | None = None,
    out: str | Path = "runs/experiments",
    rows: list[str] | None = None,
    config: str | None = None,
    overrides: list[Change] | None = None,
    extra: str | Path | None = None,
    stages: Stages | None = None,
    progress: bool = True,
    jobs: int = 1,
) -> dict:
    """Run `table` (1-4, "fig1" or an ablation such as "timenorm") and write `<out>/<stem>.{md,csv,json,png}`
    (table2.md, fig1.md, timenorm.md); returns {"table", "rows": [RowResult], "paths"}.

    Args:
        data: the main dataset folder (cpu: a synthetic dataset, generated at <out>/data/synth when None; paper: the
            ARID 1.1 track-1 folder).
        preset: cpu | paper (base config configs/<preset>.yaml unless `config` is given).
        seeds: runs per row (seeds 0..N-1); default PRESET_SEEDS[preset] (cpu 3, paper 1).
        rows: row keys to run (default all), e.g. ["delta", "constant"].
        overrides: dotted `section.key=value` overrides applied to every row (after the row's own).
        extra: Table 4's additional domain (paper: HMDB51 root); cpu renders a brighter synthetic dataset when None.
        jobs: (row, seed) trainings run side by side, each a process with one torch thread (1: in this process).
    """
    from darkaction.experiments.results import write_table

    seeds = PRESET_SEEDS.get(preset, 1) if seeds is None else seeds
    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}")
    if jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {jobs}")
    if preset not in PRESET_FILES:
        raise ConfigError(f"unknown preset {preset!r}; use one of {', '.join(PRESET_FILES)}")
    stages = stages or Stages()
    tab = get_table(table)
    chosen = select_rows(tab, rows)
    out = Path(out).resolve()
    notes: list[str] = []
    if data is None:
        if preset != "cpu":
            raise ConfigError("--data is required with --preset paper (the ARID 1.1 track-1 folder)")
        base = load_config(config or str(preset_file(preset)), [*PRESET_EXTRAS.get(preset, ()), *(overrides or [])])
        synth_cfg = dataclasses.replace(base.synth, out=str(out / "data" / "synth"))
        data = stages.synth(synth_cfg) if not (Path(synth_cfg.out) / "metadata.json").is_file() else synth_cfg.out
    data = Path(data).resolve()
    if not data.is_dir():
        raise ConfigError(f"--data {data}: folder not found")
    plan = Plan(preset, out, data, Path(extra).resolve() if extra else None, config, list(overrides or []), notes)
    if preset == "cpu":
        notes.append(f"Measured at CPU scale (preset cpu) on the synthetic dataset {data}, not on ARID.")
    if any(r.extra_data for r in chosen) and preset == "cpu" and plan.extra is None:
        plan.extra = _bright_synth(plan, stages)
        notes.append(
            "HMDB51 is not available here: the additional domain is a second synthetic dataset rendered brighter "
            f"(mean level {BRIGHT_SYNTH['brightness'][0]:.0f}-{BRIGHT_SYNTH['brightness'][1]:.0f} of 255) with less "
            f"noise, at {plan.extra}; it stands in for well-lit HMDB51 footage."
        )
    if tab.note:
        notes.append(tab.note)
    cold = [(r, c) for r, c in ((r, plan.loaded(r, 0)) for r in chosen) if lacks_warm_up(c)]
    if cold:
        epochs = cold[0][1].train.pretrain_epochs + cold[0][1].train.epochs
        notes.append(
            f"{', '.join(r.name for r, _ in cold)}: no TGAP warm-up of the backbone exists for this model; trained "
            f"from scratch for {epochs} epochs, the warm-up plus training epochs of the other rows."
        )
    scratch = [r for r in chosen if lacks_pretrained(plan.loaded(r, 0))]
    if scratch:
        notes.append(
            f"{', '.join(r.name for r in scratch)}: the preset's pretrained backbone is an R(2+1)D; these rows have "
            "another backbone and train from scratch (no pretrained weights of their own exist at this scale)."
        )
    from darkaction.models.pretrained import pretrained_file

    for r in chosen:  # before any data work: the paper preset refuses to train its R(2+1)D rows without weights
        cfg = plan.config_for(r, 0)
        if not _not_runnable(plan, r, cfg):
            pretrained_file(cfg.model.pretrained)
    results = run_table(tab, plan, chosen, seeds, stages, progress, jobs)
    paths = write_table(tab, results, out, preset=preset, seeds=seeds, notes=notes)
    from darkaction.experiments.claims import write_claims

    paths["claims"] = write_claims(out)["md"]  # every table run brings the verdicts up to date
    return {"table": tab.number, "rows": results, "paths": paths}
