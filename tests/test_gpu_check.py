"""scripts/gpu_check.sh's install stage, rehearsed offline: a venv, the project installed into
it by pip without an index, and get_xp run by the venv's Python on the CuPy stand-in.

The other stages (pytest, bench, train.py, evaluate.py) take minutes even on the stand-in and
are covered by their own tests; this one checks the part of the script only a GPU run would
otherwise reach: that the venv is made and the project installed (a stage that `timeout`
cannot run fails here with a non-zero status).
"""
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROW = re.compile(r"^(.+?)\s+(-?\d+)\s+(\d+)s\s+(\d+)s$")


def rehearse(out, stages):
    env = {**os.environ, "GPU_CHECK_STANDIN": "1", "GPU_CHECK_STAGES": stages,
           "PYTHON": sys.executable, "OUT": str(out), "PIP_NO_INDEX": "1"}
    done = subprocess.run(["bash", "scripts/gpu_check.sh"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = [ROW.match(line) for line in (out / "summary.txt").read_text().splitlines()]
    return {m[1]: int(m[2]) for m in rows if m}


def test_the_rehearsal_makes_the_venv_and_installs_the_project(tmp_path):
    rows = rehearse(tmp_path, "install probe")
    assert rows == {"venv with .[gpu]": 0, "get_xp proves the device": 0}, \
        (tmp_path / "install.txt").read_text()
    # The venv's tinyvae is this checkout's, imported from outside it: pip installed it.
    assert f"tinyvae from {ROOT / 'tinyvae'}" in (tmp_path / "install.txt").read_text()
    assert "cupy 14.2.0+standin" in (tmp_path / "probe.txt").read_text()


def test_negative_control_without_the_install_the_probe_fails(tmp_path):
    # Without the install stage there is no venv: the probe fails (127: no such program).
    assert rehearse(tmp_path, "probe") == {"get_xp proves the device": 127}
