"""The built-in synthetic dark-action dataset, written in the ARID 1.1 track-1 layout.

    from darkaction.config import SynthConfig
    out = synth(SynthConfig(out="data/synth", seed=0))

writes `<out>/videos/<Class>/<Class>_<group>_<k>.mp4`, `train.csv` / `test.csv` (`VideoID,Video,ClassID`, ARID ids
Run 5 ... Wave 10) and `metadata.json`. An articulated figure performs one action per clip between an idle
preparation and an idle end, in a dark, noisy, colour-cast room (see `synth_render`). It keeps ARID's confounds:
few (subject, scene) groups repeated with small variations, train and test groups disjoint, clip lengths that depend
on the class in train but not in test.

Every clip is seeded from (seed, class id, group, k), so its bytes do not depend on the order of generation or the
number of worker processes; x264 runs single-threaded and the muxer in bitexact mode, so the same seed gives
byte-identical files.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
from pathlib import Path

import numpy as np

from darkaction.config import TRACK1_CLASSES, SynthConfig
from darkaction.errors import ConfigError, DataError
from darkaction.utils import atomic_write_bytes, atomic_write_text, read_json, write_json

CLASS_IDS = {"Run": 5, "Sit": 6, "Stand": 7, "Turn": 8, "Walk": 9, "Wave": 10}
# motions of the pretraining corpus only, numbered after ARID's eleven classes (0-10)
PRETRAIN_IDS = {
    "Jump": 11, "Squat": 12, "Bow": 13, "Kick": 14, "Clap": 15, "Punch": 16, "RaiseArms": 17, "Sidestep": 18
}  # fmt: skip
CLASS_IDS.update(PRETRAIN_IDS)
FORMAT_VERSION = 1


# Train clip lengths per class as a range of positions on the log scale between min_frames and max_frames: the
# classes overlap but their means differ, the length bias ARID's train split has and its test split does not.
TRAIN_LENGTH_RANGE = {
    "Run": (0.0, 0.35),
    "Turn": (0.1, 0.45),
    "Walk": (0.25, 0.6),
    "Stand": (0.35, 0.7),
    "Sit": (0.45, 0.8),
    "Wave": (0.6, 1.0),
}
MIN_ACTION_FRAMES = 10


# ---------------------------------------------------------------------------------------------- planning


def _check(cfg: SynthConfig) -> None:
    """Reject settings that cannot produce a valid dataset, naming the config key to change."""
    bad = [c for c in cfg.classes if c not in CLASS_IDS]
    if bad or not cfg.classes or len(set(cfg.classes)) != len(cfg.classes):
        raise ConfigError(
            f"synth.classes={cfg.classes!r}: give distinct names from {', '.join(TRACK1_CLASSES)} (case as written), "
            f"or for a pretraining corpus also {', '.join(PRETRAIN_IDS)}"
        )
    if cfg.width < 32 or cfg.height < 32 or cfg.width % 2 or cfg.height % 2 or max(cfg.width, cfg.height) > 4096:
        raise ConfigError(
            f"synth.width x synth.height = {cfg.width}x{cfg.height}: both must be even (H.264 4:2:0) and 32..4096"
        )
    if not 0.5 <= cfg.figure_scale <= 1.8:
        raise ConfigError(f"synth.figure_scale={cfg.figure_scale}: must be between 0.5 and 1.8 (the figure must fit)")
    if not 1 <= cfg.fps <= 240:
        raise ConfigError(f"synth.fps={cfg.fps}: must be between 1 and 240")
    if cfg.train_groups < 1 or cfg.test_groups < 1 or cfg.reps < 1:
        raise ConfigError(
            f"synth.train_groups={cfg.train_groups}, synth.test_groups={cfg.test_groups}, synth.reps={cfg.reps}: "
            "each must be at least 1"
        )
    if not 16 <= cfg.min_frames <= cfg.max_frames:
        raise ConfigError(
            f"synth.min_frames={cfg.min_frames}, synth.max_frames={cfg.max_frames}: need 16 <= min_frames <= max_frames"
        )
    if len(cfg.brightness) != 2 or not 0 < cfg.brightness[0] <= cfg.brightness[1] < 255:
        raise ConfigError(
            f"synth.brightness={cfg.brightness!r}: give [low, high] mean 8-bit levels, 0 < low <= high < 255"
        )
    if not 0 <= cfg.noise <= 20:
        raise ConfigError(f"synth.noise={cfg.noise}: must be between 0 (clean) and 20")
    if not 0 <= cfg.crf <= 51:
        raise ConfigError(f"synth.crf={cfg.crf}: H.264 CRF must be between 0 and 51")
    fh = cfg.figure_height
    if fh and (len(fh) != 2 or not 0.2 <= fh[0] <= fh[1] <= 0.8):
        raise ConfigError(f"synth.figure_height={fh!r}: give [low, high] fractions of the frame height in 0.2..0.8")
    af = cfg.action_fraction
    if len(af) != 2 or not 0.1 <= af[0] <= af[1] <= 1.0:
        raise ConfigError(f"synth.action_fraction={af!r}: give [low, high] shares of the clip in 0.1..1")
    if not 0 <= cfg.dark_fraction <= 1:
        raise ConfigError(f"synth.dark_fraction={cfg.dark_fraction}: must be between 0 and 1")
    db = cfg.dark_brightness
    if len(db) != 2 or not 0 < db[0] <= db[1] < 255:
        raise ConfigError(f"synth.dark_brightness={db!r}: give [low, high] mean 8-bit levels, 0 < low <= high < 255")
    if cfg.test_reps < 0:
        raise ConfigError(f"synth.test_reps={cfg.test_reps}: must be 0 (= reps) or more")
    if cfg.workers < 1:
        raise ConfigError(f"synth.workers={cfg.workers}: must be at least 1")


def clip_rng(seed: int, cls: str, group: int, k: int) -> np.random.Generator:
    """The random generator of one clip: a function of (seed, class id, group, k) only."""
    return np.random.default_rng([seed, 1, CLASS_IDS[cls], group, k])


GROUP_SCENE, GROUP_BODY, GROUP_DARKNESS, GROUP_DISTANCE = 0, 1, 2, 3  # independent streams of a group


def group_rng(seed: int, group: int, part: int) -> np.random.Generator:
    """The random generator of one part (scene, body, darkness) of a (subject, scene) group, shared by all its
    clips of every class."""
    return np.random.default_rng([seed, 2, group, part])


def groups(cfg: SynthConfig) -> dict[str, list[int]]:
    """Group numbers per split: train 1..train_groups, test the next test_groups numbers (disjoint by design)."""
    train = list(range(1, cfg.train_groups + 1))
    test = list(range(cfg.train_groups + 1, cfg.train_groups + cfg.test_groups + 1))
    return {"train": train, "test": test}


def clip_length(rng: np.random.Generator, cls: str, split: str, cfg: SynthConfig) -> int:
    """Frames in a clip: class-dependent in train, one common log-uniform range in test."""
    lo, hi = TRAIN_LENGTH_RANGE.get(cls, (0.0, 1.0)) if split == "train" and cfg.length_bias else (0.0, 1.0)
    u = rng.uniform(lo, hi)
    length = math.exp(math.log(cfg.min_frames) + u * (math.log(cfg.max_frames) - math.log(cfg.min_frames)))
    return int(min(max(round(length), cfg.min_frames), cfg.max_frames))


# (walk, run) ranges of stride rate (strides per second) and travel speed (figure heights per second); with
# `synth.gait_speed: shared` both classes draw from the union, so only the body tells them apart
CADENCE = {"Walk": (0.85, 1.05), "Run": (1.35, 1.6)}
SPEED = {"Walk": (0.55, 0.75), "Run": (1.5, 1.9)}


def _gait_range(ranges: dict, cls: str, shared: bool) -> tuple[float, float]:
    return (ranges["Walk"][0], ranges["Run"][1]) if shared else ranges[cls]


def draw_motion(rng: np.random.Generator, cls: str, shared_gait: bool = False) -> dict:
    """The action's parameters for one clip (floats, stored in the metadata). `shared_gait`: walks and runs draw
    stride rate and travel speed from one common range (`synth.gait_speed: shared`); the draws stay in order."""
    m = {"idle_amp": float(rng.uniform(0.02, 0.08)), "idle_phase": float(rng.uniform(0, 2 * np.pi))}
    direction = float(rng.choice([-1.0, 1.0]))
    if cls in ("Walk", "Run"):
        run = cls == "Run"
        m.update(
            direction=direction,
            yaw=direction * float(np.deg2rad(rng.uniform(62, 118))),
            cadence=float(rng.uniform(*_gait_range(CADENCE, cls, shared_gait))),
            swing=float(rng.uniform(0.6, 0.75) if run else rng.uniform(0.32, 0.42)),  # thigh swing, radians
            speed=float(rng.uniform(*_gait_range(SPEED, cls, shared_gait))),
            gait_phase=float(rng.uniform(0, 2 * np.pi)),
        )
    elif cls in ("Sit", "Stand"):
        m.update(direction=direction, yaw=direction * float(np.deg2rad(rng.uniform(35, 70))))
    elif cls == "Wave":
        m.update(
            yaw=float(np.deg2rad(rng.uniform(-30, 30))),
            wave_side=direction,
            wave_freq=float(rng.uniform(1.5, 2.5)),
            wave_height=float(rng.uniform(2.1, 2.6)),
            wave_phase=float(rng.uniform(0, 2 * np.pi)),
        )
    elif cls == "Turn":
        facing_back = bool(rng.random() < 0.5)
        m.update(
            yaw=float(np.deg2rad(rng.uniform(-25, 25) + (180.0 if facing_back else 0.0))),
            turn_dir=direction,
        )
    elif cls in PRETRAIN_IDS:
        m.update(_draw_pretrain_motion(rng, cls, direction))
    return m


def _draw_pretrain_motion(rng: np.random.Generator, cls: str, direction: float) -> dict:
    """Parameters of the pretraining corpus's extra motions: facing, repetitions, speeds, extents."""
    m = {"yaw": float(np.deg2rad(rng.uniform(-80, 80))), "reps": float(rng.integers(1, 4))}
    if cls == "Jump":
        m["height"] = float(rng.uniform(0.08, 0.22))
    elif cls == "Bow":
        m["depth"] = float(rng.uniform(0.6, 1.2))
    elif cls == "Kick":
        m["side"] = direction
    elif cls in ("Clap", "Punch"):
        m["freq"] = float(rng.uniform(1.2, 3.0))
        m["arm"] = float(rng.uniform(1.0, 1.5))
    elif cls == "Sidestep":
        m.update(direction=direction, cadence=float(rng.uniform(0.8, 1.4)), speed=float(rng.uniform(0.25, 0.5)))
        m["yaw"] = float(np.deg2rad(rng.uniform(-30, 30)))
    return m


def scene_params(cfg: SynthConfig, group: int) -> dict:
    """The group's scene parameters, with the figure's size scaled by `cfg.figure_scale`."""
    from darkaction.data.synth_render import draw_scene_params

    params = draw_scene_params(group_rng(cfg.seed, group, GROUP_SCENE))
    if cfg.figure_height:
        # the subject's distance from the camera: a group's own draw, from a stream of its own
        lo, hi = cfg.figure_height
        params["figure_frac"] = float(group_rng(cfg.seed, group, GROUP_DISTANCE).uniform(lo, hi))
    params["figure_frac"] *= float(cfg.figure_scale)
    return params


def walk_span(cfg: SynthConfig, figure_frac: float) -> float:
    """Figure heights a walk or run may cross: the picture's width between its margins."""
    return (cfg.width / (figure_frac * cfg.height)) * 0.78


def max_travel_frames(cfg: SynthConfig, figure_frac: float, motion: dict) -> int:
    """The most action frames a walk or run at this speed and heading takes before the figure would leave the
    picture (eased in and out, the action covers about 0.85 of its full-speed distance)."""
    travel = motion["speed"] * abs(math.sin(motion["yaw"]))
    return int(walk_span(cfg, figure_frac) / travel * cfg.fps / 0.85)


def plan_clip(cfg: SynthConfig, cls: str, group: int, k: int, split: str) -> dict:
    """Everything that decides one clip, drawn from its own generator: length, action window, motion, brightness."""
    rng = clip_rng(cfg.seed, cls, group, k)
    n = clip_length(rng, cls, split, cfg)
    motion = draw_motion(rng, cls, shared_gait=cfg.gait_speed == "shared")
    gparams = scene_params(cfg, group)
    n_act = int(round(n * rng.uniform(*cfg.action_fraction)))
    if cls in ("Walk", "Run"):
        # the figure must stay in the picture: limit the travel to the width left between the margins
        n_act = min(n_act, max_travel_frames(cfg, gparams["figure_frac"], motion))
        motion["x0"] = -motion["direction"] * walk_span(cfg, gparams["figure_frac"]) / 2
    elif cls in ("Sit", "Stand"):
        motion["x0"] = float(rng.uniform(-0.15, 0.15))
    elif cls == "Sidestep":
        span = (cfg.width / (gparams["figure_frac"] * cfg.height)) * 0.7
        n_act = min(n_act, int(span / motion["speed"] * cfg.fps / 0.85))
        motion["x0"] = -motion["direction"] * span / 2 * abs(math.cos(motion["yaw"]))
    else:
        motion["x0"] = float(rng.uniform(-0.3, 0.3))
    n_act = int(min(max(n_act, MIN_ACTION_FRAMES), n - 2))
    start = int(rng.integers(0, n - 1 - n_act)) if n - 1 - n_act > 0 else 0
    lo, hi = cfg.brightness
    group_level = group_rng(cfg.seed, group, GROUP_DARKNESS).uniform(0, 1)  # the group's darkness
    target = lo + (hi - lo) * float(np.clip(group_level + rng.uniform(-0.15, 0.15), 0.0, 1.0))
    if cfg.dark_fraction > 0:
        # nearly black takes (lights off, lens covered): a stream of their own keeps the other draws unchanged
        dark = np.random.default_rng([cfg.seed, 5, CLASS_IDS[cls], group, k])
        nearly_black = bool(dark.random() < cfg.dark_fraction)
        if nearly_black:
            target = float(dark.uniform(*cfg.dark_brightness))
    return {
        "video": f"{cls}/{cls}_{group}_{k}.mp4",
        "class": cls,
        "class_id": CLASS_IDS[cls],
        "split": split,
        "group": group,
        "k": k,
        "n_frames": n,
        "fps": cfg.fps,
        "action_start": start,
        "action_end": start + n_act,
        "target_brightness": round(target, 3),
        "motion": {key: round(float(v), 6) for key, v in motion.items()},
        **({"nearly_black": nearly_black} if cfg.dark_fraction > 0 else {}),
    }


def plan(cfg: SynthConfig) -> list[dict]:
    """All clips, in the order of the CSVs: split, class, group, repetition."""
    _check(cfg)
    clips = []
    for split, gs in groups(cfg).items():
        reps = cfg.test_reps if split == "test" and cfg.test_reps else cfg.reps
        for cls in cfg.classes:
            for g in gs:
                for k in range(1, reps + 1):
                    clips.append(plan_clip(cfg, cls, g, k, split))
    return clips


# ---------------------------------------------------------------------------------------------- rendering


def _clip_scene(cfg: SynthConfig, clip: dict):
    """What one planned clip is made of: (noise stream, body, background albedo, per-frame albedo, scene)."""
    import cv2

    from darkaction.data.synth_render import build_scene, draw_chair, pose_sequence, random_body, render_albedo

    cv2.setNumThreads(1)
    cls, n = clip["class"], clip["n_frames"]
    # noise: the clip's own stream, apart from plan_clip's draws
    rng = np.random.default_rng([cfg.seed, 4, CLASS_IDS[cls], clip["group"], clip["k"]])
    gparams = scene_params(cfg, clip["group"])
    body = random_body(group_rng(cfg.seed, clip["group"], GROUP_BODY))
    # camera and lamp jitter belong to the repetition (group, k), as if each take were set up anew
    jitter = np.random.default_rng([cfg.seed, 3, clip["group"], clip["k"]])
    scene = build_scene(gparams, cfg.width, cfg.height, jitter)
    motion = clip["motion"]
    poses = pose_sequence(cls, n, clip["action_start"], clip["action_end"], motion, body, cfg.fps)
    background = scene.background.copy()
    if cls in ("Sit", "Stand"):
        draw_chair(background, scene, body, motion["yaw"], motion["x0"])
    albedo = np.empty((n, cfg.height, cfg.width, 3), np.uint8)
    for i in range(n):
        albedo[i] = background
        render_albedo(albedo[i], scene, body, poses.joints[i], float(poses.yaw[i]))
    return rng, body, background, albedo, scene


def render_clip(cfg: SynthConfig, clip: dict, noise: bool = True) -> tuple[np.ndarray, dict]:
    """Frames of one planned clip: uint8 (T, H, W, 3) RGB and extra metadata (brightness, gain, body).

    `noise=False` gives the clean exposure (same gain, no shot/read noise), for tests of the motion."""
    from darkaction.data.synth_render import body_dict, calibrate_gain, expose, radiance

    rng, body, _, albedo, scene = _clip_scene(cfg, clip)
    gain = calibrate_gain(radiance(albedo[0], scene), clip["target_brightness"], cfg.noise, rng)
    frames = np.empty_like(albedo)
    for i in range(len(albedo)):
        frames[i] = expose(radiance(albedo[i], scene), gain, cfg.noise if noise else 0.0, rng)
    extra = {"brightness": round(float(frames.mean()), 3), "gain": round(gain, 6), "body": body_dict(body)}
    return frames, extra


def clean_layers(cfg: SynthConfig, clip: dict) -> tuple[np.ndarray, np.ndarray]:
    """The clip as `render_clip` exposes it (same gain) but without noise: (with the person, the empty scene),
    both uint8 (T, H, W, 3). Their difference is the person's signal before the camera's noise and the codec."""
    from darkaction.data.synth_render import calibrate_gain, expose, radiance

    rng, _, background, albedo, scene = _clip_scene(cfg, clip)
    gain = calibrate_gain(radiance(albedo[0], scene), clip["target_brightness"], cfg.noise, rng)
    empty = expose(radiance(background, scene), gain, 0.0, None)
    person = np.stack([expose(radiance(a, scene), gain, 0.0, None) for a in albedo])
    return person, np.broadcast_to(empty, person.shape)


def encode_mp4(frames: np.ndarray, fps: int, crf: int) -> bytes:
    """H.264 (libx264, yuv420p) in MP4, deterministic: one encoder thread, bitexact muxer and codec flags.

    frames: uint8 (T, H, W, 3) RGB. Returns the file's bytes."""
    import av
    import cv2

    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4", options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream(
            "libx264", rate=fps, options={"crf": str(crf), "preset": "veryfast", "flags": "+bitexact"}
        )
        stream.width = frames.shape[2]
        stream.height = frames.shape[1]
        stream.pix_fmt = "yuv420p"
        # x264's multi-threaded encoder is not bit-reproducible between runs; one thread is
        stream.codec_context.thread_count = 1
        for i, frame in enumerate(frames):
            # convert with OpenCV (BT.601, the same numbers as swscale's) into a frame whose every byte we set
            vf = av.VideoFrame.from_ndarray(cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420), format="yuv420p")
            vf.pts = i
            container.mux(stream.encode(vf))
        container.mux(stream.encode(None))
    return buf.getvalue()


def _pool(workers: int):
    """Worker processes that each make exactly one clip.

    libx264 keeps state between encoders in one process (an encoder's bytes were seen to depend on what the same
    process encoded before it), so every clip is encoded in a process of its own. They are forked from a clean
    fork server that has the libraries loaded already, which costs milliseconds; spawn where fork is not available."""
    import multiprocessing as mp

    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["numpy", "cv2", "av", "darkaction.data.synthetic", "darkaction.data.synth_render"])
    else:
        ctx = mp.get_context("spawn")
    return ctx.Pool(processes=workers, maxtasksperchild=1)


def _make_indexed(item: tuple[int, tuple[dict, dict, str]]) -> tuple[int, dict]:
    return item[0], make_clip(item[1])


def make_clip(job: tuple[dict, dict, str]) -> dict:
    """Worker: render, encode and atomically write one clip; returns its metadata.

    job = (config as a dict, the planned clip, the videos folder)."""
    cfg_dict, clip, videos = job
    cfg = SynthConfig(**cfg_dict)
    frames, extra = render_clip(cfg, clip)
    data = encode_mp4(frames, cfg.fps, cfg.crf)
    atomic_write_bytes(Path(videos) / clip["video"], data)
    return {**clip, **extra}


# ---------------------------------------------------------------------------------------------- dataset


def _recorded_config(cfg: SynthConfig) -> dict:
    """The settings that decide the bytes of the dataset (not where it goes or how many processes made it)."""
    d = dataclasses.asdict(cfg)
    for key in ("out", "workers", "preview"):
        d.pop(key)
    defaults = dataclasses.asdict(SynthConfig())
    for key in ("figure_scale", "profile", "test_reps", "figure_height", "dark_fraction", "dark_brightness",
                "action_fraction", "length_bias", "gait_speed"):  # fmt: skip
        if d.get(key) == defaults[key]:
            d.pop(key)  # the default: recorded as before the option existed
    return d


def _prepare_out(out: Path, planned: list[dict]) -> None:
    """Refuse to write into a folder that is not a synthetic dataset; drop videos of a previous, larger run."""
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: exists and is not a folder; choose another --out (synth.out)")
    meta_path = out / "metadata.json"
    if out.is_dir() and any(out.iterdir()) and not meta_path.is_file():
        raise DataError(
            f"{out}: folder is not empty and holds no synthetic dataset (no metadata.json); "
            "choose another --out (synth.out) or empty it"
        )
    if meta_path.is_file():
        try:
            old = read_json(meta_path)
            old_videos = {c["video"] for c in old.get("clips", [])}
        except (ValueError, KeyError, TypeError, AttributeError):
            raise DataError(
                f"{meta_path}: unreadable metadata of a previous synthetic dataset; delete {out} and run again"
            ) from None
        keep = {c["video"] for c in planned}
        for rel in sorted(old_videos - keep):
            (out / "videos" / rel).unlink(missing_ok=True)
        (out / "preview.png").unlink(missing_ok=True)


def _write_csv(path: Path, clips: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["VideoID", "Video", "ClassID"])
    for i, c in enumerate(clips):
        w.writerow([i, c["video"], c["class_id"]])
    atomic_write_text(path, buf.getvalue())


def synth(cfg: SynthConfig) -> Path:
    """Generate the dataset described by `cfg` into `cfg.out` and return that folder.

    Clips are rendered by `cfg.workers` processes (1 = in this process); the output does not depend on it."""
    from darkaction.utils import progress_bar

    out = Path(cfg.out)
    clips = plan(cfg)
    _prepare_out(out, clips)
    videos = out / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    cfg_dict = dataclasses.asdict(cfg)
    jobs = [(cfg_dict, c, str(videos)) for c in clips]
    # longest clips first keeps both workers busy until the end
    order = sorted(range(len(jobs)), key=lambda i: -clips[i]["n_frames"])
    results: dict[int, dict] = {}
    with _pool(cfg.workers) as pool, progress_bar(total=len(jobs), desc="synth", unit="clip", disable=None) as bar:
        for i, meta in pool.imap_unordered(_make_indexed, [(i, jobs[i]) for i in order]):
            results[i] = meta
            bar.update()
    meta_clips = [results[i] for i in range(len(jobs))]
    for split in ("train", "test"):
        _write_csv(out / f"{split}.csv", [c for c in meta_clips if c["split"] == split])
    meta = {
        "format": "darkaction-synth",
        "version": FORMAT_VERSION,
        "seed": cfg.seed,
        "config": _recorded_config(cfg),
        "class_ids": {c: CLASS_IDS[c] for c in cfg.classes},
        "groups": groups(cfg),
        "joints": list(_joint_names()),
        "clips": meta_clips,
    }
    if cfg.preview:
        write_preview(out, meta_clips, cfg)
    # metadata last: its presence marks a complete dataset
    write_json(out / "metadata.json", meta)
    return out


def _joint_names() -> tuple[str, ...]:
    from darkaction.data.synth_render import JOINTS

    return JOINTS


# ---------------------------------------------------------------------------------------------- preview


def write_preview(out: Path, clips: list[dict], cfg: SynthConfig, n_cols: int = 6) -> Path:
    """`<out>/preview.png`: one row per class (its first train clip), `n_cols` frames from before, during and after
    the action, brightened by auto-gain (99th percentile to white) so a person can see the figure."""
    import cv2

    from darkaction.data.video import decode

    rows = []
    scale = max(1, int(round(240 / cfg.height)))
    for cls in cfg.classes:
        clip = next(c for c in clips if c["class"] == cls)
        frames, _ = decode(out / "videos" / clip["video"], resize="none")
        a, b = clip["action_start"], clip["action_end"]
        picks = np.unique(np.round(np.linspace(max(a - 5, 0), min(b + 5, len(frames) - 1), n_cols)).astype(int))
        tiles = []
        for i in picks:
            f = frames[i].astype(np.float32)
            gain = 230.0 / max(np.percentile(f, 99), 1.0)
            tile = np.clip(f * gain, 0, 255).astype(np.uint8)
            tile = cv2.resize(tile, (cfg.width * scale, cfg.height * scale), interpolation=cv2.INTER_NEAREST)
            cv2.putText(tile, f"{i}", (3, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 0), 1, cv2.LINE_AA)
            tiles.append(tile)
        while len(tiles) < n_cols:
            tiles.append(np.zeros_like(tiles[0]))
        label = np.zeros((cfg.height * scale, 150, 3), np.uint8)
        lines = [
            cls,
            clip["video"].split("/")[-1],
            f"{clip['n_frames']} frames",
            f"action {a}-{b}",
            f"mean {clip['brightness']:.1f}/255",
        ]
        for j, text in enumerate(lines):
            cv2.putText(label, text, (4, 18 + 18 * j), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
        rows.append(np.concatenate([label, *tiles], axis=1))
    sheet = np.concatenate(rows, axis=0)
    ok, png = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    if not ok:
        raise DataError(f"{out / 'preview.png'}: PNG encoding failed")
    return atomic_write_bytes(out / "preview.png", png.tobytes())


def video_paths(root: os.PathLike) -> list[Path]:
    """All videos of a synthetic dataset folder, in CSV order (train then test)."""
    meta = read_json(Path(root) / "metadata.json")
    return [Path(root) / "videos" / c["video"] for c in meta["clips"]]
