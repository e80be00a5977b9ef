"""Rendering for the synthetic dark-action dataset: articulated poses, a lit scene and a low-light camera.

Coordinates. A pose is 15 joints (`JOINTS`) in a camera-aligned world frame, in units of roughly the figure's
height: X to the image's right, Y up (the floor is Y = 0), D towards the camera. The body itself is built in its
own frame (x = the subject's left, y up, z = the way the subject faces) and rotated by the yaw angle about the
vertical axis; yaw 0 faces the camera, yaw +90 deg faces the image's right. Projection is orthographic, so a limb
pointing at the camera shortens by cos(angle) and nothing else changes.

Every function here is a pure function of its arguments (randomness comes in through an explicit
`numpy.random.Generator`), so a clip depends only on its own seed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

JOINTS = (
    "pelvis",
    "neck",
    "head",
    "l_shoulder",
    "l_elbow",
    "l_hand",
    "r_shoulder",
    "r_elbow",
    "r_hand",
    "l_hip",
    "l_knee",
    "l_foot",
    "r_hip",
    "r_knee",
    "r_foot",
)
J = {name: i for i, name in enumerate(JOINTS)}

GAMMA = 2.2  # display gamma of the simulated camera's encoding
FULL_WELL = 8000.0  # photo-electrons at full scale: sets the shot-noise level at noise=1
READ_NOISE = 0.0005  # read-noise std in linear full-scale units at noise=1


@dataclass(frozen=True)
class Body:
    """Segment lengths and widths of one subject, in world units (standing height is about `height`)."""

    height: float = 1.0
    thigh: float = 0.25
    shin: float = 0.25
    torso: float = 0.30
    neck: float = 0.09  # neck joint to head centre
    head: float = 0.065  # head radius
    upper_arm: float = 0.17
    forearm: float = 0.16
    shoulder: float = 0.10  # half shoulder width
    hip: float = 0.06  # half hip width
    chest: float = 0.20  # torso width seen from the front
    depth: float = 0.12  # torso depth seen from the side
    limb: float = 0.06  # limb thickness


def random_body(rng: np.random.Generator) -> Body:
    """A subject: overall size and proportions vary between recording groups."""
    h = rng.uniform(0.9, 1.08)
    leg = rng.uniform(0.95, 1.05)
    arm = rng.uniform(0.95, 1.05)
    build = rng.uniform(0.85, 1.2)
    return Body(
        height=h,
        thigh=0.25 * h * leg,
        shin=0.25 * h * leg,
        torso=0.30 * h,
        neck=0.09 * h,
        head=0.065 * h,
        upper_arm=0.17 * h * arm,
        forearm=0.16 * h * arm,
        shoulder=0.10 * h * build,
        hip=0.065 * h * build,
        chest=0.21 * h * build,
        depth=0.12 * h * build,
        limb=0.06 * h * build,
    )


@dataclass
class Poses:
    """A pose sequence: `joints` (T, 15, 3) as (X, Y, D) per `JOINTS`; `yaw` (T,) radians, 0 = facing the camera."""

    joints: np.ndarray
    yaw: np.ndarray


# ---------------------------------------------------------------------------------------------- poses


def _smooth(p: np.ndarray) -> np.ndarray:
    """Smoothstep 0 -> 1 with zero velocity at both ends (motion starts and stops without a jerk)."""
    return p * p * (3.0 - 2.0 * p)


def _envelope(p: np.ndarray, ramp: float = 0.15) -> np.ndarray:
    """1 inside the action, easing in and out over `ramp` of it, 0 outside: a gait starts and stops smoothly."""
    up = _smooth(np.clip(p / ramp, 0.0, 1.0))
    down = _smooth(np.clip((1.0 - p) / ramp, 0.0, 1.0))
    inside = (p > 0.0) & (p < 1.0)
    return np.where(inside, np.minimum(up, down), 0.0)


def _dir(theta: np.ndarray, alpha: np.ndarray, side: float) -> np.ndarray:
    """Unit vector (T, 3) of a limb hanging down, swung forward by `theta` and out sideways by `alpha` (radians)."""
    theta = np.asarray(theta, dtype=np.float64)
    alpha = np.broadcast_to(np.asarray(alpha, dtype=np.float64), theta.shape)
    return np.stack([side * np.sin(alpha), -np.cos(alpha) * np.cos(theta), np.cos(alpha) * np.sin(theta)], axis=-1)


def _idle(n: int, t: np.ndarray, motion: dict) -> dict[str, np.ndarray]:
    """Joint angles of a person standing still: a slow sway of the arms and a little lean (T arrays)."""
    sway = motion.get("idle_amp", 0.05) * np.sin(2 * np.pi * 0.35 * t + motion.get("idle_phase", 0.0))
    z = np.zeros(n)
    return {
        "lean": 0.03 + 0.3 * sway,
        "yaw": z + motion.get("yaw", 0.0),
        "z": z.copy(),
        "thigh_l": z.copy(),
        "knee_l": z + 0.04,
        "thigh_r": z.copy(),
        "knee_r": z + 0.04,
        "arm_l": sway.copy(),
        "abd_l": z + 0.12,
        "elbow_l": z + 0.15,
        "fabd_l": z.copy(),
        "arm_r": -sway,
        "abd_r": z + 0.12,
        "elbow_r": z + 0.15,
        "fabd_r": z.copy(),
    }


def _gait(a: dict, t: np.ndarray, p: np.ndarray, motion: dict, run: bool) -> None:
    """Walk or run: legs and arms swing in antiphase; running swings wider, bends knees and elbows more, leans."""
    env = _envelope(p)
    phase = 2 * np.pi * motion["cadence"] * t + motion.get("gait_phase", 0.0)
    amp = motion["swing"]
    knee = 1.5 if run else 0.65
    for side, offset in (("l", 0.0), ("r", np.pi)):
        ph = phase + offset
        a[f"thigh_{side}"] = env * amp * np.sin(ph)
        # the knee bends while the leg swings forward (thigh angle increasing), straightens in stance
        a[f"knee_{side}"] = a[f"knee_{side}"] + env * (0.1 + knee * np.maximum(0.0, np.cos(ph)) ** 1.5)
        a[f"arm_{side}"] = a[f"arm_{side}"] * (1 - env) - env * amp * (1.1 if run else 0.8) * np.sin(ph)
        a[f"elbow_{side}"] = a[f"elbow_{side}"] + env * (1.35 if run else 0.25)
    a["lean"] = a["lean"] + env * (0.28 if run else 0.05)
    # forward travel follows the envelope so the figure accelerates and decelerates
    fps = 1.0 / max(t[1] - t[0], 1e-9) if len(t) > 1 else 30.0
    a["z"] = np.cumsum(env) * motion["speed"] / fps


def _sit(a: dict, p: np.ndarray, body: Body) -> None:
    """Sit down onto a chair behind the figure: hips and knees flex, the torso leans forward mid-way, feet stay put."""
    s = _smooth(p)
    hip = 1.5 * s
    knee = 1.55 * s
    for side in ("l", "r"):
        a[f"thigh_{side}"] = a[f"thigh_{side}"] + hip
        a[f"knee_{side}"] = a[f"knee_{side}"] + knee
        a[f"arm_{side}"] = a[f"arm_{side}"] + 0.45 * np.sin(np.pi * p) + 0.35 * s
        a[f"elbow_{side}"] = a[f"elbow_{side}"] + 0.6 * s
    a["lean"] = a["lean"] + 0.5 * np.sin(np.pi * p) + 0.08 * s
    # the pelvis moves back so the feet keep their place on the floor
    th = a["thigh_l"]
    a["z"] = -(body.thigh * np.sin(th) + body.shin * np.sin(th - a["knee_l"]))


def _wave(a: dict, t: np.ndarray, p: np.ndarray, motion: dict) -> None:
    """Raise one arm out to the side, swing the forearm a few times, lower it."""
    side = "l" if motion["wave_side"] > 0 else "r"
    raise_ = _smooth(np.clip(p / 0.2, 0, 1)) * _smooth(np.clip((1 - p) / 0.2, 0, 1))
    raise_ = np.where((p > 0) & (p < 1), raise_, 0.0)
    swing = np.sin(2 * np.pi * motion["wave_freq"] * t + motion.get("wave_phase", 0.0))
    a[f"abd_{side}"] = a[f"abd_{side}"] * (1 - raise_) + raise_ * motion["wave_height"]
    a[f"arm_{side}"] = a[f"arm_{side}"] * (1 - raise_) + raise_ * 0.25
    a[f"fabd_{side}"] = raise_ * (0.55 + 0.5 * swing)


def _turn(a: dict, p: np.ndarray, motion: dict) -> None:
    """Turn on the spot by half a revolution, stepping on alternate feet."""
    a["yaw"] = motion["yaw"] + motion["turn_dir"] * np.pi * _smooth(p)
    env = _envelope(p, 0.1)
    steps = np.sin(2 * np.pi * 2.0 * p)
    a["thigh_l"] = a["thigh_l"] + env * 0.35 * np.maximum(0, steps)
    a["knee_l"] = a["knee_l"] + env * 0.7 * np.maximum(0, steps)
    a["thigh_r"] = a["thigh_r"] + env * 0.35 * np.maximum(0, -steps)
    a["knee_r"] = a["knee_r"] + env * 0.7 * np.maximum(0, -steps)


# ---- motions of the pretraining corpus only (`synth --profile pretrain`): more kinds than the six ARID classes, so
# a backbone pretrained on them learns limbs and bodies in motion in general, not the target classes.


def _bump(p: np.ndarray, ramp: float = 0.2) -> np.ndarray:
    """0 -> 1 over the first `ramp` of the action, 1, then back to 0 over the last `ramp`; 0 outside."""
    up = _smooth(np.clip(p / ramp, 0, 1)) * _smooth(np.clip((1 - p) / ramp, 0, 1))
    return np.where((p > 0) & (p < 1), up, 0.0)


def _repeats(p: np.ndarray, motion: dict) -> np.ndarray:
    """0..1 cycles: 0.5 - 0.5 cos over `motion['reps']` repetitions inside the action, 0 outside."""
    cyc = 0.5 - 0.5 * np.cos(2 * np.pi * motion["reps"] * p)
    return np.where((p > 0) & (p < 1), cyc, 0.0)


def _jump(a: dict, p: np.ndarray, motion: dict, body: Body) -> None:
    """Jump on the spot: crouch, push off with the arms swinging up, fly, land."""
    ph = np.where((p > 0) & (p < 1), np.sin(2 * np.pi * motion["reps"] * p), 0.0)
    crouch, air = np.maximum(0.0, -ph), np.maximum(0.0, ph)
    for side in ("l", "r"):
        a[f"thigh_{side}"] = a[f"thigh_{side}"] + 0.9 * crouch
        a[f"knee_{side}"] = a[f"knee_{side}"] + 1.3 * crouch + 0.25 * air
        a[f"arm_{side}"] = a[f"arm_{side}"] - 0.6 * crouch + 2.2 * air
    a["lean"] = a["lean"] + 0.35 * crouch
    a["lift"] = motion["height"] * body.height * air**1.5


def _squat(a: dict, p: np.ndarray, motion: dict, body: Body) -> None:
    """Squat down and up `reps` times, arms reaching forward, feet in place."""
    s = _repeats(p, motion)
    for side in ("l", "r"):
        a[f"thigh_{side}"] = a[f"thigh_{side}"] + 1.4 * s
        a[f"knee_{side}"] = a[f"knee_{side}"] + 1.9 * s
        a[f"arm_{side}"] = a[f"arm_{side}"] + 1.4 * s
    a["lean"] = a["lean"] + 0.45 * s
    th = a["thigh_l"]
    a["z"] = -(body.thigh * np.sin(th) + body.shin * np.sin(th - a["knee_l"]))


def _bow(a: dict, p: np.ndarray, motion: dict) -> None:
    """Bend forward from the hips and straighten up again, arms hanging."""
    s = _repeats(p, motion) * motion["depth"]
    a["lean"] = a["lean"] + s
    for side in ("l", "r"):
        a[f"arm_{side}"] = a[f"arm_{side}"] + 0.8 * s
        a[f"thigh_{side}"] = a[f"thigh_{side}"] - 0.15 * s


def _kick(a: dict, p: np.ndarray, motion: dict) -> None:
    """Kick forward with one leg `reps` times: knee up, then the shin snaps out."""
    side = "l" if motion["side"] > 0 else "r"
    cyc = np.where((p > 0) & (p < 1), np.mod(motion["reps"] * p, 1.0), 0.0)
    lift = np.sin(np.pi * cyc)
    snap = np.clip((cyc - 0.3) / 0.3, 0, 1) * np.clip((0.9 - cyc) / 0.3, 0, 1)
    a[f"thigh_{side}"] = a[f"thigh_{side}"] + 1.3 * lift
    a[f"knee_{side}"] = a[f"knee_{side}"] + 1.4 * lift * (1.0 - snap)
    other = "r" if side == "l" else "l"
    a[f"arm_{other}"] = a[f"arm_{other}"] + 0.6 * lift
    a["lean"] = a["lean"] - 0.12 * lift


def _clap(a: dict, t: np.ndarray, p: np.ndarray, motion: dict) -> None:
    """Raise both hands in front of the chest and clap at `freq` claps per second."""
    r = _bump(p)
    open_ = 0.5 + 0.5 * np.sin(2 * np.pi * motion["freq"] * t)
    for side in ("l", "r"):
        a[f"arm_{side}"] = a[f"arm_{side}"] * (1 - r) + r * motion["arm"]
        a[f"elbow_{side}"] = a[f"elbow_{side}"] + r * 0.9
        a[f"abd_{side}"] = a[f"abd_{side}"] * (1 - r) + r * (0.05 + 0.55 * open_)
        a[f"fabd_{side}"] = -r * 0.5 * (1 - open_)


def _punch(a: dict, t: np.ndarray, p: np.ndarray, motion: dict) -> None:
    """Guard up, then punch forward with alternate arms at `freq` punches per second."""
    r = _bump(p, 0.15)
    for side, offset in (("l", 0.0), ("r", np.pi)):
        ext = np.maximum(0.0, np.sin(np.pi * motion["freq"] * t + offset)) ** 2
        a[f"arm_{side}"] = a[f"arm_{side}"] * (1 - r) + r * (0.9 + 0.7 * ext)
        a[f"elbow_{side}"] = a[f"elbow_{side}"] * (1 - r) + r * 1.9 * (1 - ext)
        a[f"abd_{side}"] = a[f"abd_{side}"] * (1 - r) + r * 0.05
    a["lean"] = a["lean"] + 0.1 * r


def _raise_arms(a: dict, p: np.ndarray, motion: dict) -> None:
    """Lift both arms out to the side and over the head `reps` times."""
    s = _repeats(p, motion)
    for side in ("l", "r"):
        a[f"abd_{side}"] = a[f"abd_{side}"] + 2.7 * s
        a[f"elbow_{side}"] = a[f"elbow_{side}"] * (1 - s)


def _sidestep(a: dict, t: np.ndarray, p: np.ndarray, motion: dict) -> None:
    """Step sideways (the subject's left or right) with small knee bends, facing the same way throughout."""
    env = _envelope(p)
    ph = 2 * np.pi * motion["cadence"] * t
    for side, offset in (("l", 0.0), ("r", np.pi)):
        a[f"knee_{side}"] = a[f"knee_{side}"] + env * 0.5 * np.maximum(0.0, np.sin(ph + offset))
        a[f"thigh_{side}"] = a[f"thigh_{side}"] + env * 0.25 * np.maximum(0.0, np.sin(ph + offset))
    fps = 1.0 / max(t[1] - t[0], 1e-9) if len(t) > 1 else 30.0
    a["side"] = np.cumsum(env) * motion["speed"] * motion["direction"] / fps


PRETRAIN_ACTIONS = ("Jump", "Squat", "Bow", "Kick", "Clap", "Punch", "RaiseArms", "Sidestep")


# action -> its joint-angle changes (angles, times, action progress, motion parameters, body); Stand is Sit reversed
_MOTIONS = {
    "Walk": lambda a, t, p, m, b: _gait(a, t, p, m, run=False),
    "Run": lambda a, t, p, m, b: _gait(a, t, p, m, run=True),
    "Sit": lambda a, t, p, m, b: _sit(a, p, b),
    "Wave": lambda a, t, p, m, b: _wave(a, t, p, m),
    "Turn": lambda a, t, p, m, b: _turn(a, p, m),
    "Jump": lambda a, t, p, m, b: _jump(a, p, m, b),
    "Squat": lambda a, t, p, m, b: _squat(a, p, m, b),
    "Bow": lambda a, t, p, m, b: _bow(a, p, m),
    "Kick": lambda a, t, p, m, b: _kick(a, p, m),
    "Clap": lambda a, t, p, m, b: _clap(a, t, p, m),
    "Punch": lambda a, t, p, m, b: _punch(a, t, p, m),
    "RaiseArms": lambda a, t, p, m, b: _raise_arms(a, p, m),
    "Sidestep": lambda a, t, p, m, b: _sidestep(a, t, p, m),
}


def _assemble(a: dict, body: Body, motion: dict) -> Poses:
    """Forward kinematics: joint angles (T arrays) -> joints (T, 15, 3) in the camera frame."""
    n = len(a["lean"])
    body_j = np.zeros((n, len(JOINTS), 3))
    legs = {}
    for side, s in (("l", 1.0), ("r", -1.0)):
        thigh = _dir(a[f"thigh_{side}"], 0.03, s) * body.thigh
        shin = _dir(a[f"thigh_{side}"] - a[f"knee_{side}"], 0.0, s) * body.shin
        legs[side] = (thigh, shin)
    # the lower foot stands on the floor
    drop = np.stack([-(th[:, 1] + sh[:, 1]) for th, sh in legs.values()], axis=1).max(axis=1)
    lift = a.get("lift", np.zeros(n))
    pelvis = np.stack([a.get("side", np.zeros(n)), drop + 0.02 * body.height + lift, a["z"]], axis=1)
    body_j[:, J["pelvis"]] = pelvis
    spine = np.stack([np.zeros(n), np.cos(a["lean"]), np.sin(a["lean"])], axis=1)
    neck = pelvis + body.torso * spine
    body_j[:, J["neck"]] = neck
    body_j[:, J["head"]] = neck + body.neck * spine
    for side, s in (("l", 1.0), ("r", -1.0)):
        hip = pelvis + np.array([s * body.hip, 0.0, 0.0])
        thigh, shin = legs[side]
        body_j[:, J[f"{side}_hip"]] = hip
        body_j[:, J[f"{side}_knee"]] = hip + thigh
        body_j[:, J[f"{side}_foot"]] = hip + thigh + shin
        sh = neck + np.array([s * body.shoulder, -0.03 * body.height, 0.0])
        elbow = sh + body.upper_arm * _dir(a[f"arm_{side}"], a[f"abd_{side}"], s)
        hand = elbow + body.forearm * _dir(
            a[f"arm_{side}"] + a[f"elbow_{side}"], a[f"abd_{side}"] + a[f"fabd_{side}"], s
        )
        body_j[:, J[f"{side}_shoulder"]] = sh
        body_j[:, J[f"{side}_elbow"]] = elbow
        body_j[:, J[f"{side}_hand"]] = hand
    yaw = a["yaw"]
    c, s_ = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
    x, y, z = body_j[..., 0], body_j[..., 1], body_j[..., 2]
    out = np.stack([x * c + z * s_ + motion.get("x0", 0.0), y, -x * s_ + z * c], axis=-1)
    return Poses(joints=out, yaw=np.asarray(yaw, dtype=np.float64).copy())


def pose_sequence(action: str, n_frames: int, start: int, end: int, motion: dict, body: Body, fps: float) -> Poses:
    """The figure's pose in every frame of a clip: idle, the action over frames [start, end], idle again.

    `motion` holds the action's parameters (see `synthetic.draw_motion`). Stand is defined as Sit played backwards:
    `pose_sequence("Stand", n, s, e, m, b, fps)` equals `pose_sequence("Sit", n, n-1-e, n-1-s, m, b, fps)` reversed
    in time, exactly. Returns `Poses` with joints (n_frames, 15, 3) and yaw (n_frames,).
    """
    if not 0 <= start < end <= n_frames - 1:
        raise ValueError(f"action window [{start}, {end}] does not fit in {n_frames} frames")
    if action == "Stand":
        sit = pose_sequence("Sit", n_frames, n_frames - 1 - end, n_frames - 1 - start, motion, body, fps)
        return Poses(joints=sit.joints[::-1].copy(), yaw=sit.yaw[::-1].copy())
    f = np.arange(n_frames, dtype=np.float64)
    t = f / fps
    p = np.clip((f - start) / (end - start), 0.0, 1.0)
    a = _idle(n_frames, t, motion)
    if action not in _MOTIONS:
        raise ValueError(f"unknown action {action!r}")
    _MOTIONS[action](a, t, p, motion, body)
    return _assemble(a, body, motion)


# ---------------------------------------------------------------------------------------------- scene


@dataclass
class Scene:
    """A recording set-up: background albedo (H, W, 3) uint8, illumination (H, W, 3) float32 (linear, includes the
    light's colour and vignetting), the camera mapping (pixels per world unit, floor row, centre column) and colours."""

    background: np.ndarray
    illumination: np.ndarray
    scale: float
    floor_v: float
    centre_u: float
    colors: dict


def draw_scene_params(rng: np.random.Generator) -> dict:
    """Numbers describing one (subject, scene) group: room colours, lamp, camera framing, clothes."""

    def col(lo: float, hi: float) -> list[int]:
        return [int(v) for v in rng.integers(int(lo), int(hi), size=3)]

    casts = [[1.0, 0.72, 0.45], [0.75, 0.9, 1.0], [0.85, 1.0, 0.7], [1.0, 0.85, 0.8], [0.9, 0.8, 1.0]]
    return {
        "wall": col(60, 200),
        "floor": col(40, 170),
        "horizon": float(rng.uniform(0.3, 0.55)),  # wall/floor edge above the feet, in figure heights
        "props": [
            {
                "x": float(rng.uniform(0, 1)),
                "y": float(rng.uniform(0.05, 0.6)),
                "w": float(rng.uniform(0.08, 0.3)),
                "h": float(rng.uniform(0.1, 0.5)),
                "color": col(20, 240),
            }
            for _ in range(int(rng.integers(2, 5)))
        ],
        "texture": float(rng.uniform(0.1, 0.35)),
        "texture_seed": int(rng.integers(0, 2**31)),
        "lamp_u": float(rng.uniform(-0.2, 1.2)),
        "lamp_v": float(rng.uniform(-0.3, 0.5)),
        "lamp_radius": float(rng.uniform(0.25, 0.7)),
        "ambient": float(rng.uniform(0.03, 0.15)),
        "vignette": float(rng.uniform(0.3, 0.7)),
        "cast": [float(v) for v in casts[int(rng.integers(len(casts)))]],
        "figure_frac": float(rng.uniform(0.42, 0.5)),  # standing height / image height
        "floor_frac": float(rng.uniform(0.86, 0.94)),  # feet row / image height
        "skin": col(90, 230),
        "hair": col(10, 90),
        "shirt": col(30, 240),
        "pants": col(20, 160),
        "emblem": [int(v) for v in rng.permutation([250, 230, int(rng.integers(0, 80))])],
        "chair": col(60, 180),
    }


def build_scene(params: dict, width: int, height: int, jitter: np.random.Generator) -> Scene:
    """Render the static part of a clip: background albedo and illumination, with small per-repetition jitter."""
    h, w = height, width
    scale = params["figure_frac"] * h * jitter.uniform(0.95, 1.05)
    floor_v = params["floor_frac"] * h + jitter.uniform(-0.01, 0.01) * h
    centre_u = w / 2 + jitter.uniform(-0.04, 0.04) * w
    bg = np.empty((h, w, 3), np.float32)
    horizon = int(round(floor_v - params["horizon"] * scale))
    rows = np.linspace(0.85, 1.1, h, dtype=np.float32)[:, None, None]
    bg[:] = np.asarray(params["wall"], np.float32) * rows
    bg[max(horizon, 0) :] = np.asarray(params["floor"], np.float32)
    for prop in params["props"]:
        x0 = int(prop["x"] * w)
        y1 = int(horizon - prop["y"] * scale * 0.5)
        y0 = int(y1 - prop["h"] * h)
        x1 = int(x0 + prop["w"] * w)
        cv2.rectangle(bg, (x0, y0), (x1, y1), [float(c) for c in prop["color"]], -1)
    # low-frequency texture so the background is not flat (walls and floors are never uniform)
    tex_rng = np.random.default_rng(params["texture_seed"])
    tex = cv2.resize(tex_rng.random((6, 8), dtype=np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    bg *= (1.0 + params["texture"] * (tex - 0.5))[..., None]
    background = np.clip(bg, 0, 255).astype(np.uint8)

    # illumination: a lamp with inverse-square-like falloff, ambient light, vignetting, the lamp's colour
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    lu = (params["lamp_u"] + jitter.uniform(-0.05, 0.05)) * w
    lv = (params["lamp_v"] + jitter.uniform(-0.05, 0.05)) * h
    r0 = params["lamp_radius"] * max(w, h)
    lamp = 1.0 / (1.0 + ((xx - lu) ** 2 + (yy - lv) ** 2) / r0**2)
    rr = ((xx - w / 2) ** 2 + (yy - h / 2) ** 2) / ((w / 2) ** 2 + (h / 2) ** 2)
    vignette = 1.0 - params["vignette"] * rr
    light = (params["ambient"] + lamp) * vignette
    illumination = light[..., None] * np.asarray(params["cast"], np.float32)
    colors = {k: params[k] for k in ("skin", "hair", "shirt", "pants", "emblem", "chair")}
    return Scene(background, illumination.astype(np.float32), float(scale), float(floor_v), float(centre_u), colors)


def draw_chair(img: np.ndarray, scene: Scene, body: Body, yaw: float, x0: float) -> None:
    """A chair behind the standing figure (where `_sit` puts the pelvis), drawn into the background in place."""
    seat_h = body.shin * 0.95
    back = -(body.thigh + 0.02)
    pts_body = np.array(
        [
            [-0.1, seat_h, back + 0.12],
            [-0.1, seat_h, back - 0.1],
            [0.1, seat_h, back - 0.1],
            [0.1, seat_h, back + 0.12],
        ]
    )
    c, s = np.cos(yaw), np.sin(yaw)

    def px(p: np.ndarray) -> tuple[int, int]:
        x = p[0] * c + p[2] * s + x0
        return _to_px(scene, x, p[1])

    color = [int(v) for v in scene.colors["chair"]]
    thick = max(1, int(round(0.035 * scene.scale)))
    for corner in pts_body:
        cv2.line(img, px(corner), px(corner * [1, 0, 1]), color, thick, cv2.LINE_AA, 4)
    seat = np.array([px(p) for p in pts_body], np.int32)
    cv2.fillPoly(img, [seat], color, cv2.LINE_AA, 4)
    # backrest on the far edge of the seat
    top = pts_body[1:3] + [0, 0.28 * body.height, 0]
    for base, up in zip(pts_body[1:3], top):
        cv2.line(img, px(base), px(up), color, thick, cv2.LINE_AA, 4)
    cv2.line(img, px(top[0]), px(top[1]), color, thick * 2, cv2.LINE_AA, 4)


def _to_px(scene: Scene, x: float, y: float) -> tuple[int, int]:
    """World (X, Y) -> fixed-point pixel coordinates (4 fractional bits, for cv2's `shift=4`)."""
    u = scene.centre_u + scene.scale * x
    v = scene.floor_v - scene.scale * y
    return int(round(u * 16)), int(round(v * 16))


def _shade(color, factor: float) -> list[int]:
    return [int(min(255, c * factor)) for c in color]


def render_albedo(canvas: np.ndarray, scene: Scene, body: Body, joints: np.ndarray, yaw: float) -> np.ndarray:
    """Draw the figure of one frame (joints (15, 3), yaw) onto `canvas` (H, W, 3 uint8 albedo) in place.

    Limbs are thick anti-aliased lines drawn far to near; the far side is darker. The front of the body carries a
    bright chest emblem and the face, both narrowed by cos(yaw), so the facing direction is visible.
    """
    col = scene.colors
    px = [_to_px(scene, j[0], j[1]) for j in joints]
    depth = joints[:, 2]
    sc = scene.scale

    def thick(w: float) -> int:
        return max(1, int(round(w * sc)))

    limbs = []
    for side in ("l", "r"):
        a, b, c = J[f"{side}_hip"], J[f"{side}_knee"], J[f"{side}_foot"]
        limbs.append((a, b, body.limb * 1.25, col["pants"]))
        limbs.append((b, c, body.limb, col["pants"]))
        a, b, c = J[f"{side}_shoulder"], J[f"{side}_elbow"], J[f"{side}_hand"]
        limbs.append((a, b, body.limb * 0.9, col["shirt"]))
        limbs.append((b, c, body.limb * 0.75, col["skin"]))
    torso_d = depth[J["pelvis"]]
    near_side = [lb for lb in limbs if (depth[lb[0]] + depth[lb[1]]) / 2 >= torso_d]
    far_side = [lb for lb in limbs if (depth[lb[0]] + depth[lb[1]]) / 2 < torso_d]
    far_side.sort(key=lambda lb: depth[lb[0]] + depth[lb[1]])
    near_side.sort(key=lambda lb: depth[lb[0]] + depth[lb[1]])
    for a, b, w, c in far_side:
        cv2.line(canvas, px[a], px[b], _shade(c, 0.7), thick(w), cv2.LINE_AA, 4)

    # torso: a quadrilateral around the spine whose width is the body's silhouette at this yaw
    cy, sy = abs(np.cos(yaw)), abs(np.sin(yaw))
    half = 0.5 * (body.chest * cy + body.depth * sy) * sc
    p0 = np.array([px[J["pelvis"]][0], px[J["pelvis"]][1]], np.float64) / 16
    p1 = np.array([px[J["neck"]][0], px[J["neck"]][1]], np.float64) / 16
    axis = p1 - p0
    norm = np.array([-axis[1], axis[0]]) / max(np.linalg.norm(axis), 1e-6)
    quad = np.array([p0 + norm * half * 0.8, p1 + norm * half, p1 - norm * half, p0 - norm * half * 0.8])
    cv2.fillPoly(canvas, [np.round(quad * 16).astype(np.int32)], col["shirt"], cv2.LINE_AA, 4)
    front = np.cos(yaw)
    if front > 0.12:
        # chest emblem on the front, shifted towards the facing side and narrowed by cos(yaw)
        centre = p0 + 0.62 * axis + np.array([np.sin(yaw) * body.depth * 0.5 * sc, 0.0])
        ew = 0.5 * body.chest * 0.55 * front * sc
        eh = 0.22 * np.linalg.norm(axis)
        box = np.array([centre + [-ew, -eh], centre + [ew, -eh], centre + [ew, eh], centre + [-ew, eh]])
        cv2.fillPoly(canvas, [np.round(box * 16).astype(np.int32)], col["emblem"], cv2.LINE_AA, 4)

    # head: hair all round, the face on the front half
    r = body.head * sc
    hc = np.array(px[J["head"]], np.float64) / 16
    cv2.circle(canvas, px[J["head"]], int(round(r * 16)), col["hair"], -1, cv2.LINE_AA, 4)
    if front > -0.2:
        fc = hc + np.array([np.sin(yaw) * r * 0.45, r * 0.15])
        axes = (int(round(r * 0.8 * max(front, 0.35) * 16)), int(round(r * 0.75 * 16)))
        centre16 = (int(round(fc[0] * 16)), int(round(fc[1] * 16)))
        cv2.ellipse(canvas, centre16, axes, 0, 0, 360, col["skin"], -1, cv2.LINE_AA, 4)

    for a, b, w, c in near_side:
        cv2.line(canvas, px[a], px[b], c, thick(w), cv2.LINE_AA, 4)
    return canvas


# ---------------------------------------------------------------------------------------------- camera

_SRGB_TO_LINEAR = ((np.arange(256, dtype=np.float32) / 255.0) ** GAMMA).astype(np.float32)


def radiance(albedo: np.ndarray, scene: Scene) -> np.ndarray:
    """Linear scene radiance (H, W, 3) float32: albedo (uint8, display-encoded) times illumination."""
    return _SRGB_TO_LINEAR[albedo] * scene.illumination


def expose(rad: np.ndarray, gain: float, noise: float, rng: np.random.Generator | None) -> np.ndarray:
    """The camera: linear radiance (H, W, 3) -> uint8 frame. Exposure gain, Poisson shot noise, Gaussian read noise
    (both scaled by `noise`), clipping, gamma encoding and 8-bit quantisation."""
    signal = rad * np.float32(gain)
    if noise > 0 and rng is not None:
        q = FULL_WELL / noise**2
        # shot noise: photon counts are Poisson; float32 keeps the rest of the arithmetic cheap
        counts = rng.poisson(np.maximum(signal, 0) * np.float32(q))
        signal = counts.astype(np.float32) * np.float32(1.0 / q)
        signal += rng.standard_normal(signal.shape, dtype=np.float32) * np.float32(READ_NOISE * noise)
    encoded = np.clip(signal, 0.0, 1.0) ** np.float32(1.0 / GAMMA)
    return (encoded * np.float32(255.0) + np.float32(0.5)).astype(np.uint8)


def calibrate_gain(rad: np.ndarray, target: float, noise: float, rng: np.random.Generator) -> float:
    """Exposure gain giving mean 8-bit brightness `target` for this radiance, noise included.

    The noiseless closed form is corrected once with a noisy trial: noise clipped at zero brightens dark frames,
    the gamma curve darkens them, and which wins depends on the level."""
    base = float(np.mean(np.clip(rad, 0, None) ** (1.0 / GAMMA))) * 255.0
    gain = (target / max(base, 1e-6)) ** GAMMA
    for _ in range(2):
        got = float(expose(rad, gain, noise, rng).mean())
        gain *= (target / max(got, 0.5)) ** GAMMA
    return float(gain)


def body_dict(body: Body) -> dict:
    return {k: round(float(v), 6) for k, v in asdict(body).items()}
