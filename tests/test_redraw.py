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
    # A committed run keeps config.json and log.csv, not its checkpoint: the curves of its log
    # are redrawn, the rest is left as it is.
    small = tmp_path / "committed"
    small.mkdir()
    for name in ("config.json", "log.csv"):
        shutil.copy(out / name, small / name)
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "redraw_figures.py"),
                           str(small)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0 and "from log.csv" in proc.stdout
    assert sorted(os.listdir(small / "figures")) == ["losses.png", "routing.png"]
    for name in ("losses.png", "routing.png"):
        assert (small / "figures" / name).read_bytes() == (tmp_path / "trained" / name).read_bytes()


def test_an_exported_model_gets_its_reconstructions_and_traversals(tmp_path):
    """A model taken out of a run (params.npz, no checkpoint, no log) is drawn from its own
    parameters; a run whose data file is gone is skipped in one line that asks for the file
    (this script has no --data flag to give)."""
    model = tmp_path / "exported"
    shutil.copytree(os.path.join(ROOT, "tests", "fixtures", "exported-tiny"), model)
    config = (model / "config.json").read_text()
    lost = tmp_path / "lost"
    shutil.copytree(model, lost)
    (lost / "config.json").write_text(config.replace('"data": "renderer"',
                                                     f'"data": "{tmp_path / "gone.npz"}"'))
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "redraw_figures.py"),
                           str(model), str(lost)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 1 and sorted(os.listdir(model / "figures")) == [
        "reconstructions_m0.png", "shapes.png", "traversals_m0.png"]
    assert proc.stderr.count("\n") == 1 and "--data" not in proc.stderr
    assert "put that file back" in proc.stderr
