"""Library manners: the notebook API works on every call, plots never switch the user's matplotlib backend, the library
logs instead of printing, and an installed wheel carries its presets and weights (works outside the source tree)."""

from __future__ import annotations

import importlib
import logging
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np

import darkaction

ROOT = Path(__file__).resolve().parents[1]


def test_stage_names_stay_functions_after_every_module_is_imported():
    # importing a submodule binds it on its parent package: no stage may share a name with one
    for module in darkaction._STAGES.values():
        importlib.import_module(module)
    for pkg in ("data", "enhancement", "training", "evaluation", "experiments", "models", "inference"):
        importlib.import_module(f"darkaction.{pkg}")
    for name in darkaction._STAGES:
        for _ in range(2):
            obj = getattr(darkaction, name)
            assert not isinstance(obj, types.ModuleType), f"darkaction.{name} is a module, not the function"
            assert callable(obj)


def test_prepare_and_enhance_called_twice_through_the_package(tiny_synth, tmp_path):
    from test_evaluate import tiny_run_config

    cfg = tiny_run_config(tiny_synth, tmp_path)
    first = [darkaction.prepare(cfg, progress=False), darkaction.enhance(cfg, progress=False)]
    second = [darkaction.prepare(cfg, progress=False), darkaction.enhance(cfg, progress=False)]
    assert [str(x) for x in first] == [str(x) for x in second]
    rec = darkaction.Recognizer
    assert rec is darkaction.Recognizer and hasattr(rec, "from_run")


def test_plots_leave_the_users_backend_and_figures_alone(tmp_path):
    import matplotlib
    import matplotlib.pyplot as plt

    from darkaction.inference.timeline import plot_timeline
    from darkaction.report import plot_confusion

    before = matplotlib.get_backend()
    matplotlib.use("svg")  # a backend the library would not pick itself
    try:
        plot_confusion([[3, 1], [0, 4]], ["a", "b"], tmp_path / "cm.png")
        ws = [{"start": float(i), "end": i + 2.0, "label": "a", "prob": 0.7, "probs": {"a": 0.7, "b": 0.3},
               "thumbnail": np.zeros((8, 8, 3), np.uint8)} for i in range(3)]  # fmt: skip
        plot_timeline(ws, ["a", "b"], tmp_path / "tl.png")
        assert matplotlib.get_backend() == "svg" and plt.get_fignums() == []
        assert (tmp_path / "cm.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "tl.png").stat().st_size > 0
    finally:
        matplotlib.use(before)


def test_library_logs_and_only_the_cli_prints(tiny_synth, tmp_path, capsys, caplog):
    from test_evaluate import tiny_run_config

    from darkaction.cli import main

    cfg = tiny_run_config(tiny_synth, tmp_path)
    logger = logging.getLogger("darkaction")
    level = logger.level
    darkaction.prepare(cfg, progress=True)
    assert capsys.readouterr().out == ""  # library code: nothing on stdout
    with caplog.at_level(logging.INFO, logger="darkaction"):
        darkaction.prepare(cfg, progress=True)
    assert "prepared" in caplog.text  # ... it goes to logging
    over = [f"{k}={v}" for k, v in (("data.source.format", "synth"), ("data.source.root", tiny_synth),
                                    ("data.prepared", tmp_path / "prepared"), ("cache.height", 32),
                                    ("cache.width", 32))]  # fmt: skip
    assert main(["prepare", "--set", *over]) == 0
    assert "prepared" in capsys.readouterr().out  # the CLI shows it
    assert logger.level == level and not [h for h in logger.handlers if isinstance(h, logging.StreamHandler)]


def test_the_wheel_works_outside_the_source_tree(tmp_path):
    """Build the wheel, install it (without dependencies) into a fresh venv that borrows this environment's packages,
    and run the CLI from a folder far from the checkout: the presets and the backbone come from the package."""
    import site
    import sysconfig

    # build from a copy: setuptools writes build/ beside pyproject.toml
    src = tmp_path / "src_copy"
    shutil.copytree(ROOT / "src", src / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(wheels), str(src)], check=True)  # fmt: skip
    wheel = next(wheels.glob("darkaction-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    purelib = Path(subprocess.check_output([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                           text=True).strip())  # fmt: skip
    # this environment's site-packages for torch & co., after the venv's own (so the wheel's darkaction wins)
    ours = [p for p in {sysconfig.get_paths()["purelib"], *site.getsitepackages()} if Path(p).is_dir()]
    (purelib / "zz_borrowed.pth").write_text("\n".join(ours) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q", str(wheel)],
                   check=True)  # fmt: skip
    away = tmp_path / "elsewhere"
    away.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    for cmd in (["demo", "--help"], ["experiment", "--help"]):
        out = subprocess.run([venv / "bin" / "darkaction", *cmd], cwd=away, env=env, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
    probe = ("import darkaction, darkaction.pipeline as p, darkaction.experiments.runner as r; "
             "from darkaction.utils import packaged_path; "
             "print(darkaction.__file__); print(p.DEFAULT_CONFIG.is_file()); print(r.preset_file('cpu').is_file()); "
             "print(packaged_path('weights/r2plus1d_18_w0.25_pretrain.pth').is_file())")  # fmt: skip
    lines = subprocess.check_output([py, "-c", probe], cwd=away, env=env, text=True).split()
    assert str(venv) in lines[0] and lines[1:] == ["True", "True", "True"], lines
