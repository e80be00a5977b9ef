"""Decoding the real clips in ../shared/fixtures/video (AVI night clip, MP4, UCF101 AVI) and HMDB51 names."""

import pytest

from darkaction.data.index import parse_hmdb51_name
from darkaction.data.video import decode


def test_night_hmdb51_walk_clip_decodes_to_257_frames(fixtures_dir):
    frames, info = decode(fixtures_dir / "video" / "Crash_walk_f_cm_np1_ri_med_0.avi", height=112, width=112)
    assert frames.shape == (257, 112, 112, 3)
    assert (info["src_width"], info["src_height"]) == (560, 240) and info["fps"] == pytest.approx(30.0)
    assert 15 < info["mean_brightness"] < 40 and not info["warnings"]  # dark: ~27/255


@pytest.mark.parametrize(
    "name",
    ["50_FIRST_DATES_drink_u_nm_np1_fr_goo_29.mp4", "Documentario_Le_Parkour_Londrina_jump_f_cm_np1_ri_bad_6.mp4",
     "v_ApplyEyeMakeup_g01_c01.avi"],
)  # fmt: skip
def test_other_real_clips_decode(fixtures_dir, name):
    frames, info = decode(fixtures_dir / "video" / name, resize="short_side", short_side=64)
    assert frames.shape[0] > 30 and min(frames.shape[1:3]) == 64 and frames.dtype.name == "uint8"
    assert info["fps"] > 0 and frames.std() > 5


def test_hmdb51_names_of_real_clips(fixtures_dir):
    names = {p.stem: parse_hmdb51_name(p.stem) for p in (fixtures_dir / "video").glob("*_*_*_np*")}
    assert names["Crash_walk_f_cm_np1_ri_med_0"]["movie"] == "Crash"
    assert names["50_FIRST_DATES_drink_u_nm_np1_fr_goo_29"]["action"] == "drink"
    d = names["Documentario_Le_Parkour_Londrina_jump_f_cm_np1_ri_bad_6"]
    assert (d["movie"], d["action"], d["quality"]) == ("Documentario_Le_Parkour_Londrina", "jump", "bad")
