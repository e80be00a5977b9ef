import subprocess
import sys

import pytest

from darkaction.cli import build_parser, main

SUBCOMMANDS = ["synth", "prepare", "enhance", "train", "evaluate", "predict", "experiment", "demo", "bench"]


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for name in SUBCOMMANDS:
        assert name in out


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_every_subcommand_has_help_with_options(name, capsys):
    with pytest.raises(SystemExit) as e:
        main([name, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--config" in out and "--set" in out


def test_bad_override_exits_2_with_message(capsys, tmp_path):
    code = main(["synth", "--out", str(tmp_path / "s"), "--set", "synth.sed=1"])
    assert code == 2
    err = capsys.readouterr().err
    assert "synth.sed" in err and "synth.seed" in err


def test_console_script_entry_point_runs():
    r = subprocess.run([sys.executable, "-m", "darkaction.cli", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and "darkaction" in r.stdout


def test_parser_builds():
    assert build_parser().prog == "darkaction"


@pytest.mark.parametrize(
    ("record", "said"), [({"train_seconds": 90.0}, "trained in 1.5 min"), ({"train_seconds": None}, "")]
)
def test_train_says_how_long_the_run_trained_when_it_is_known(record, said, capsys, tmp_path, monkeypatch):
    import darkaction.training.run as run_mod
    from darkaction.utils import write_json

    def fake_train(cfg, resume=False):
        write_json(tmp_path / "fit.json", {**record, "epochs": 1})
        return tmp_path

    monkeypatch.setattr(run_mod, "train", fake_train)
    assert main(["train", "--config", "configs/demo.yaml"]) == 0
    out = capsys.readouterr().out
    assert f"run written to {tmp_path}" in out and (said in out if said else "trained in" not in out)
