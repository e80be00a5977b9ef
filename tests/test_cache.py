"""Frame cache: put/frames/meta round trip, read-only memmaps, commit marker, settings guard."""

import numpy as np
import pytest

from darkaction.config import CacheConfig
from darkaction.data.cache import FrameCache, cache_key, resize_settings, source_signature
from darkaction.errors import DataError


def _frames(t=9, h=8, w=10, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8)


def test_put_then_read_back(tmp_path):
    c = FrameCache(tmp_path / "c", settings={"resize": "fixed", "height": 8, "width": 10})
    x = _frames()
    c.put("Run__Run_1_1", x, {"fps": 30.0})
    assert "Run__Run_1_1" in c and c.ids == ["Run__Run_1_1"] and len(c) == 1
    arr = c.frames("Run__Run_1_1")
    assert isinstance(arr, np.memmap) and not arr.flags.writeable
    np.testing.assert_array_equal(arr, x)
    np.testing.assert_array_equal(arr[np.array([0, 0, 8, 3])], x[[0, 0, 8, 3]])
    m = c.meta("Run__Run_1_1")
    assert m["n_frames"] == 9 and (m["height"], m["width"]) == (8, 10) and m["fps"] == 30.0
    assert c.verify("Run__Run_1_1") == ""
    # a second handle on the same folder sees the entry and the settings
    c2 = FrameCache(tmp_path / "c")
    assert c2.ids == ["Run__Run_1_1"] and c2.settings["height"] == 8


def test_put_replaces_an_entry(tmp_path):
    c = FrameCache(tmp_path / "c")
    c.put("a", _frames(5))
    c.put("a", _frames(7, seed=1))
    assert c.meta("a")["n_frames"] == 7 and c.frames("a").shape[0] == 7


def test_npy_without_json_is_not_an_entry(tmp_path):
    """A job killed between the .npy rename and the .json commit leaves no visible entry."""
    c = FrameCache(tmp_path / "c")
    np.save(tmp_path / "c" / "half.npy", _frames())
    assert "half" not in c and c.ids == [] and c.verify("half") == "missing"
    with pytest.raises(DataError, match="prepare"):
        c.frames("half")


def test_verify_detects_inconsistent_metadata(tmp_path):
    c = FrameCache(tmp_path / "c")
    c.put("a", _frames(5))
    (tmp_path / "c" / "a.json").write_text('{"n_frames": 6}')
    assert "metadata says 6" in FrameCache(tmp_path / "c").verify("a")


def test_rejects_bad_frames_and_ids(tmp_path):
    c = FrameCache(tmp_path / "c")
    with pytest.raises(ValueError):
        c.put("a", np.zeros((3, 4, 4, 3), np.float32))
    with pytest.raises(ValueError):
        c.put("a", np.zeros((0, 4, 4, 3), np.uint8))
    with pytest.raises(ValueError):
        c.put("../x", np.zeros((1, 4, 4, 3), np.uint8))


def test_settings_mismatch_is_a_data_error(tmp_path):
    FrameCache(tmp_path / "c", settings={"resize": "fixed", "height": 112, "width": 112})
    with pytest.raises(DataError, match="settings"):
        FrameCache(tmp_path / "c", settings={"resize": "fixed", "height": 64, "width": 64})


def test_missing_cache_without_create(tmp_path):
    with pytest.raises(DataError, match="prepare"):
        FrameCache(tmp_path / "nope", create=False)


def test_cache_key_follows_resize_settings():
    assert cache_key(CacheConfig()) == "fixed_112x112"
    assert cache_key(CacheConfig(resize="short_side", short_side=128)) == "short_128"
    assert resize_settings(CacheConfig(height=64, width=80))["height"] == 64


def test_source_signature_changes_with_content(tmp_path):
    f = tmp_path / "v.mp4"
    f.write_bytes(b"abc")
    s1 = source_signature(f)
    f.write_bytes(b"abcd")
    assert source_signature(f) != s1
    d = tmp_path / "frames"
    d.mkdir()
    (d / "img_00001.jpg").write_bytes(b"xx")
    assert source_signature(d)["src_bytes"] == 2


def test_clean_temporaries(tmp_path):
    c = FrameCache(tmp_path / "c")
    (tmp_path / "c" / ".a.123.npy.tmp").write_bytes(b"x")
    assert c.clean_temporaries() == 1 and not list((tmp_path / "c").glob(".*.tmp"))
