"""benchmarks/gait_probe.py: a walk or run re-planned at the other class's speed, everything else kept."""

import importlib.util
import math
from pathlib import Path

import numpy as np

from darkaction.config import SYNTH_PROFILES, SynthConfig
from darkaction.data.synthetic import plan_clip, render_clip, scene_params, walk_span

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("gait_probe", ROOT / "benchmarks" / "gait_probe.py")
probe = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(probe)

ARID = SynthConfig(**SYNTH_PROFILES["arid"])


def _travel(cfg: SynthConfig, clip: dict) -> float:
    """Figure heights the planned action could carry the figure across (at full speed for its whole window)."""
    m = clip["motion"]
    return m["speed"] * abs(math.sin(m["yaw"])) * (clip["action_end"] - clip["action_start"]) / cfg.fps


def _span(cfg: SynthConfig, clip: dict) -> float:
    return walk_span(cfg, scene_params(cfg, clip["group"])["figure_frac"])


def test_walks_speed_up_and_runs_slow_down_by_the_class_ratio_with_the_rest_kept():
    for cls, factor in (("Walk", probe.SPEED_RATIO), ("Run", 1 / probe.SPEED_RATIO)):
        for k in range(1, 5):
            clip = plan_clip(ARID, cls, 19, k, "test")
            new = probe.swapped_speed(ARID, clip)
            assert np.isclose(new["motion"]["speed"], clip["motion"]["speed"] * factor)
            others = {key: v for key, v in new["motion"].items() if key != "speed"}
            assert others == {key: v for key, v in clip["motion"].items() if key != "speed"}
            both = probe.swapped_speed(ARID, clip, cadence=True)
            assert np.isclose(both["motion"]["cadence"], clip["motion"]["cadence"] * factor)
            assert both["motion"]["speed"] == new["motion"]["speed"] and both["action_end"] == new["action_end"]
            assert both["video"].endswith("_speed_cadence.mp4")
            for key in ("n_frames", "action_start", "target_brightness", "group", "k", "class"):
                assert new[key] == clip[key]
            assert new["action_end"] <= clip["action_end"]
            assert new["video"] != clip["video"] and new["video"].endswith("_speed.mp4")
            # as plan_clip allows: the action's travel (eased in and out, about 0.85 of full speed) stays in the picture
            assert 0.85 * _travel(ARID, new) <= _span(ARID, new) + 1e-6
        assert clip["motion"]["speed"] != new["motion"]["speed"]


def test_a_slowed_run_keeps_its_whole_action_window():
    clip = plan_clip(ARID, "Run", 17, 1, "test")
    assert probe.swapped_speed(ARID, clip)["action_end"] == clip["action_end"]


def test_only_the_figure_changes_in_the_rendered_probe():
    cfg = SynthConfig(**{**SYNTH_PROFILES["arid"], "width": 80, "height": 60, "min_frames": 33, "max_frames": 40})
    clip = plan_clip(cfg, "Walk", 18, 1, "test")
    a, _ = render_clip(cfg, clip, noise=False)
    b, _ = render_clip(cfg, probe.swapped_speed(cfg, clip), noise=False)
    assert a.shape == b.shape
    assert np.array_equal(a[: clip["action_start"] + 1], b[: clip["action_start"] + 1])  # still before the action
    assert not np.array_equal(a, b)
