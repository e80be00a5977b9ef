import pytest

from darkaction.benchmarking import available, bench, find_benchmarks
from darkaction.errors import DataError


def _fake_checkout(tmp_path, code="print('ok')"):
    folder = tmp_path / "benchmarks"
    folder.mkdir()
    (folder / "bench_alpha.py").write_text(code)
    (folder / "bench_beta.py").write_text("import sys; sys.exit(3)")
    return folder


def test_finds_the_checkouts_benchmarks(tmp_path):
    folder = _fake_checkout(tmp_path)
    (tmp_path / "sub" / "dir").mkdir(parents=True)
    assert find_benchmarks(tmp_path / "sub" / "dir") == folder
    assert available(folder) == ["alpha", "beta"]


def test_runs_each_and_reports_status(tmp_path, capfd):
    folder = _fake_checkout(tmp_path, "import sys; print('quick' if '--quick' in sys.argv else 'full')")
    assert bench(["alpha"], quick=True, folder=folder) == {"alpha": 0}
    assert "quick" in capfd.readouterr().out
    assert bench(None, folder=folder) == {"alpha": 0, "beta": 3}


def test_unknown_name_is_a_clear_error(tmp_path):
    folder = _fake_checkout(tmp_path)
    with pytest.raises(DataError, match="unknown benchmark.*gamma.*available: alpha, beta"):
        bench(["gamma"], folder=folder)
