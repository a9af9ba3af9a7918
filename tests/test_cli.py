import json
import subprocess
import sys

from deltann.cli import main


def test_targets_lists_registry(capsys):
    assert main(["targets", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["z1_plus_z2sq"]["easy"] == [0] and rows["z1_plus_z2sq"]["hard"] == [1]
    assert rows["z2sat"]["bounded"] is True


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "deltann.cli", "targets"], capture_output=True,
                         text=True, check=True)
    assert "staircase3" in out.stdout
