"""scripts/redraw_figures.py draws what training drew at its last checkpoint, byte for byte."""
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_redrawn_figures_equal_the_ones_training_drew(tmp_path):
    out = tmp_path / "run"
    subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), "--steps", "2",
                    "--batch-size", "4", "--log-every", "1", "--no-progress", "--out", str(out)],
                   check=True, capture_output=True, cwd=ROOT, timeout=300)
    shutil.move(out / "figures", tmp_path / "trained")
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "redraw_figures.py"),
                           str(out), str(tmp_path / "missing")],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"redraw_figures.py: skipping {tmp_path / 'missing'}: ")
    names = sorted(os.listdir(tmp_path / "trained"))
    assert "routing.png" in names and sorted(os.listdir(out / "figures")) == names
    for name in names:
        assert (out / "figures" / name).read_bytes() == (tmp_path / "trained" / name).read_bytes()
