"""Which cue tells walk from run for a trained model: how fast the figure travels, or how it moves its body?

    .venv/bin/python benchmarks/gait_probe.py --data data/arid RUN [RUN ...] [--min-r 0.85] [--out FILE.md]

A probe on a synthetic test split (it needs the dataset's metadata.json to render clips again). The test walks and
runs whose person is clearly visible (r >= --min-r, darkaction/data/visibility.py) are rendered again in two
versions each: as they are (the control), travelling at the other class's speed (a walk's speed times
SPEED_RATIO, a run's divided by it: the two classes' speed ranges mapped onto each other), and with the stride
rate (cadence) scaled too (the whole motion played faster or slower: stride length and pose kept), with the same
length, person, pose, scene, exposure, noise and codec. Where the faster figure would leave the picture, its action
ends earlier, as `synthetic.plan_clip` limits it. Each RUN (a run directory) classifies every version with its own
test views (`Recognizer.predict`); the table gives, per class and version, how often each is called walk and run.
A model that reads the gait keeps its answer when only the travel speed changes; one that reads the speed follows
it. The probe's videos are kept in `<data>/probe_gait/` and reused.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from darkaction.config import SynthConfig
from darkaction.data.synthetic import (
    MIN_ACTION_FRAMES,
    SPEED,
    encode_mp4,
    max_travel_frames,
    render_clip,
    scene_params,
)
from darkaction.data.visibility import clip_video_id, dataset_visibility
from darkaction.inference import Recognizer
from darkaction.utils import atomic_write_bytes, atomic_write_text, read_json

# the middle of a run's travel speed over a walk's (synthetic.SPEED: 1.5-1.9 and 0.55-0.75 figure heights a second)
SPEED_RATIO = sum(SPEED["Run"]) / sum(SPEED["Walk"])
LONG = 120  # frames: the test walks longer than any training walk (54-104 on arid)


def swapped_speed(cfg: SynthConfig, clip: dict, cadence: bool = False) -> dict:
    """The planned clip travelling at the other class's speed (with `cadence`, striding that much faster or slower
    too); the action shortened where the figure would leave the frame."""
    factor = SPEED_RATIO if clip["class"] == "Walk" else 1.0 / SPEED_RATIO
    motion = {**clip["motion"], "speed": clip["motion"]["speed"] * factor}
    if cadence:
        motion["cadence"] = clip["motion"]["cadence"] * factor
    limit = max_travel_frames(cfg, scene_params(cfg, clip["group"])["figure_frac"], motion)  # as plan_clip limits it
    end = min(clip["action_end"], clip["action_start"] + max(limit, MIN_ACTION_FRAMES))
    suffix = "_speed_cadence.mp4" if cadence else "_speed.mp4"
    return {**clip, "motion": motion, "action_end": end, "video": clip["video"].replace(".mp4", suffix)}


def _length(clip: dict) -> str:
    return "long" if clip["n_frames"] > LONG else "short"


def probe_videos(root: Path, min_r: float) -> list[tuple[dict, str, Path]]:
    """(clip, version, video path) for every visible test walk and run; renders what is not there yet."""
    meta = read_json(root / "metadata.json")
    cfg = SynthConfig(**meta["config"])
    table = dataset_visibility(root, "test", (96, 96))
    out = []
    for clip in meta["clips"]:
        if clip["split"] != "test" or clip["class"] not in ("Walk", "Run") or table[clip_video_id(clip)]["r"] < min_r:
            continue
        out.append((clip, "as rendered", root / "videos" / clip["video"]))
        for cadence, version in ((False, "other class's speed"), (True, "other class's speed and cadence")):
            changed = swapped_speed(cfg, clip, cadence)
            path = root / "probe_gait" / changed["video"]
            if not path.is_file():
                frames, _ = render_clip(cfg, changed)
                atomic_write_bytes(path, encode_mp4(frames, cfg.fps, cfg.crf))
            out.append((clip, version, path))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="a synthetic dataset folder (with metadata.json)")
    ap.add_argument("runs", nargs="+", help="run directories")
    ap.add_argument("--min-r", type=float, default=0.85, help="only test clips at least this visible")
    ap.add_argument("--out", help="also write the table here (Markdown)")
    args = ap.parse_args()
    videos = probe_videos(Path(args.data), args.min_r)
    if not videos:
        raise SystemExit(f"{args.data}: no test walk or run with r >= {args.min_r}")
    keys = sorted({(c["class"], v, _length(c)) for c, v, _ in videos})
    counts = {k: np.zeros((len(args.runs), 3), int) for k in keys}  # walk, run, other
    for i, run in enumerate(args.runs):
        rec = Recognizer.from_run(run)
        for clip, version, path in videos:
            label = rec.predict(str(path), views=int(rec.cfg.eval.views))["label"].lower()
            column = 0 if label == "walk" else 1 if label == "run" else 2
            counts[(clip["class"], version, _length(clip))][i, column] += 1
        print(f"{run}: done", flush=True)
    lines = [
        f"Visible test walks and runs of {args.data} (r >= {args.min_r}), {len(args.runs)} run(s): "
        + ", ".join(args.runs),
        "",
        f"Length: long = more than {LONG} frames (longer than any training walk), short = the rest.",
        "",
        "| class | version | length | clips | called walk, per run | called run, per run | other, per run |",
        "|---|---|---|---|---|---|---|",
    ]
    for k in keys:
        c = counts[k]
        n = int(c[0].sum())
        cols = [", ".join(str(x) for x in c[:, j]) for j in range(3)]
        lines.append(f"| {k[0].lower()} | {k[1]} | {k[2]} | {n} | " + " | ".join(cols) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        atomic_write_text(Path(args.out), text)


if __name__ == "__main__":
    main()
