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
