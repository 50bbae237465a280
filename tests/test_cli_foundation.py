"""The CLI skeleton: help texts, the console script, error reporting, and run configs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from kirag.cli import COMMANDS, main
from kirag.core.runconfig import RunConfig, config_path_for


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for command in COMMANDS:
        assert command in out


@pytest.mark.parametrize("command", list(COMMANDS))
def test_each_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert f"usage: kirag {command}" in capsys.readouterr().out


def test_console_script_is_installed():
    script = shutil.which("kirag") or str(
        __import__("pathlib").Path(sys.executable).with_name("kirag")
    )
    result = subprocess.run([script, "--version"], capture_output=True, text=True, check=True)
    assert result.stdout.startswith("kirag ")


def test_models_command_shows_packaged_defaults(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert (
        "minilm" in out and "SmolLM2-135M-Instruct.Q4_1.gguf" in out and "jhu-clsp/rank1-7b" in out
    )


def test_run_config_written_next_to_file_and_inside_folder(tmp_path):
    run_file = tmp_path / "run.trec"
    run_file.write_text("")
    written = RunConfig("search", {"k": 10, "index": tmp_path}).write(run_file)
    assert written == tmp_path / "run.trec.config.json"
    data = json.loads(written.read_text())
    assert data["command"] == "search" and data["settings"] == {"k": 10, "index": str(tmp_path)}
    assert "torch" in data["packages"] and data["python"].startswith("3.")
    assert config_path_for(tmp_path) == tmp_path / "kirag-config.json"
