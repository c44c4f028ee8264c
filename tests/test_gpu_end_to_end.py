"""train.py --gpu and evaluate.py --gpu end to end, against the same commands on NumPy: a run
stopped at a checkpoint in the middle of a log interval (step 4 of 3-step rows), resumed to
step 6, then scored with every score but DCI. On the CuPy stand-in (tests/cupy_standin/,
reached through PYTHONPATH) on every machine, on the real CuPy where a CUDA device is. The
device runs in a subprocess while NumPy runs in this process, side by side.

Tolerance: every logged loss, parameter, Adam moment and score within rtol 1e-4 and atol
1e-5 of NumPy's. The stand-in computes with NumPy itself, so there it meets this exactly; on
a GPU, cuBLAS sums in another order. DCI is left out: it is fit on the host from the very
codes SAP is fit from (scores.py: the same points, encoded once on the device), so SAP covers
its device part, and its trees cost about 10 s of CPU per run."""
import contextlib
import io
import json
import os
import subprocess
import sys

import numpy
import pytest

import evaluate
import train
from conftest import CUPY, CUPY_SKIP_REASON, ROOT, standin_env

TRAIN = ["--model", "grouped", "--kl-scale", "2,1", "--log-every", "3", "--checkpoint-every",
         "4", "--batch-size", "4", "--no-progress", "--encoder-hidden", "32,32",
         "--decoder-hidden", "32,32,32"]
EVALUATE = ["--scores", "mig,mic,sap,modularity,factorvae", "--test-size", "100",
            "--score-points", "100", "--batch-size", "50", "--no-progress"]
TOLERANCE = dict(rtol=1e-4, atol=1e-5)


def both(script, args, env):
    """`script` with `args` + ["--gpu"] in a subprocess (env) and with `args` on NumPy in this
    process, side by side; their standard outputs (device, NumPy). Fails on either's error."""
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, f"{script}.py"),
                             *args("device"), "--gpu"], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = {"train": train, "evaluate": evaluate}[script].main(args("numpy"))
    device_out, device_err = proc.communicate(timeout=300)
    assert proc.returncode == 0, device_out + device_err
    assert code == 0, out.getvalue()
    return device_out, out.getvalue()


def numbers(value):
    """Every number in a JSON value, in order, with its path (strings are compared too)."""
    if isinstance(value, dict):
        return [(f"{k}.{p}", v) for k in sorted(value) for p, v in numbers(value[k])]
    if isinstance(value, list):
        return [(f"{i}.{p}", v) for i, item in enumerate(value) for p, v in numbers(item)]
    return [("", value)]


@pytest.mark.parametrize("device", ["standin", "cupy"])
def test_train_resume_and_evaluate_on_the_device_match_numpy(tmp_path, device):
    if device == "cupy" and CUPY is None:
        pytest.skip(CUPY_SKIP_REASON)
    env = standin_env() if device == "standin" else dict(os.environ)
    runs = {"numpy": tmp_path / "numpy", "device": tmp_path / device}
    for steps, extra in (("4", []), ("6", ["--resume"])):
        out, _ = both("train", lambda k: [*TRAIN, "--steps", steps, "--out", str(runs[k]),
                                          *extra], env)
    assert "resuming" in out and "at step 4" in out
    both("evaluate", lambda k: [str(runs[k]), *EVALUATE, "--report", str(runs[k] / "report")],
         env)

    ref, dev = runs["numpy"], runs["device"]
    assert json.loads((dev / "config.json").read_text())["backend"] == "cupy"
    logs = [numpy.loadtxt(run / "log.csv", delimiter=",", skiprows=1) for run in (ref, dev)]
    assert logs[0][:, 0].tolist() == [3, 4, 6]                # the stop at 4 wrote its row
    numpy.testing.assert_allclose(logs[1], logs[0], **TOLERANCE)
    with numpy.load(ref / "checkpoint.npz") as r, numpy.load(dev / "checkpoint.npz") as d:
        arrays = sorted(k for k in r.files if k.startswith(("param/", "adam_")))
        assert arrays and arrays == sorted(k for k in d.files if k.startswith(("param/", "adam_")))
        for k in arrays:
            numpy.testing.assert_allclose(d[k], r[k], err_msg=k, **TOLERANCE)
    scores = [json.loads((run / "metrics.json").read_text())["models"] for run in (ref, dev)]
    assert {"mig", "mic_groups", "sap", "modularity", "factorvae"} <= set(scores[0][0])
    for (path, r), (path_dev, d) in zip(numbers(scores[0]), numbers(scores[1]), strict=True):
        assert path == path_dev
        if isinstance(r, (int, float)) and not isinstance(r, bool):
            assert d == pytest.approx(r, rel=TOLERANCE["rtol"], abs=TOLERANCE["atol"]), path
        else:
            assert d == r, path
