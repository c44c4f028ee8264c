"""train.py --gpu and evaluate.py --gpu end to end, against the same commands on NumPy: a run
stopped at a checkpoint in the middle of a log interval (step 4 of 3-step rows), resumed to
step 6, then scored with every score. On the CuPy stand-in (tests/cupy_standin/, reached
through PYTHONPATH) on every machine, on the real CuPy where a CUDA device is present.

Tolerance: every logged loss, parameter, Adam moment and score within rtol 1e-4 and atol
1e-5 of NumPy's. The stand-in computes with NumPy itself, so there it meets this exactly; on
a GPU, cuBLAS sums in another order. The NumPy reference leaves out DCI, the one slow score
(about 10 s of CPU): it is fit on the host from the very codes SAP is fit from (the same
points, encoded once), so SAP's match covers DCI's device part."""
import json
import os
import subprocess
import sys

import numpy
import pytest

from conftest import CUPY, CUPY_SKIP_REASON, ROOT, standin_env

TRAIN = ["--model", "grouped", "--kl-scale", "2,1", "--log-every", "3", "--checkpoint-every",
         "4", "--batch-size", "4", "--no-progress", "--encoder-hidden", "32,32",
         "--decoder-hidden", "32,32,32"]
SCORES = ["mig", "mic", "sap", "modularity", "factorvae"]
EVALUATE = ["--test-size", "100", "--score-points", "100", "--batch-size", "50", "--no-progress"]
TOLERANCE = dict(rtol=1e-4, atol=1e-5)


def both(commands, envs):
    """Run the NumPy and the device command side by side; fail on either's error."""
    procs = [subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for args, env in zip(commands, envs)]
    outs = [proc.communicate(timeout=300) for proc in procs]
    for proc, (out, err) in zip(procs, outs):
        assert proc.returncode == 0, out + err
    return [out for out, _ in outs]


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
    envs = [dict(os.environ), standin_env() if device == "standin" else dict(os.environ)]
    runs = [tmp_path / "numpy", tmp_path / device]
    flags = [["--scores", ",".join(SCORES)], ["--gpu", "--scores", ",".join(SCORES + ["dci"])]]
    for steps, extra in (("4", []), ("6", ["--resume"])):
        outs = both([["train.py", *TRAIN, "--steps", steps, "--out", str(run), *extra]
                     + (["--gpu"] if run == runs[1] else []) for run in runs], envs)
    assert "resuming" in outs[1] and "at step 4" in outs[1]
    both([["evaluate.py", str(run), *EVALUATE, "--report", str(run / "report"), *f]
          for run, f in zip(runs, flags)], envs)

    config = json.loads((runs[1] / "config.json").read_text())
    assert config["backend"] == "cupy"
    logs = [numpy.loadtxt(run / "log.csv", delimiter=",", skiprows=1) for run in runs]
    assert logs[0][:, 0].tolist() == [3, 4, 6]                # the stop at 4 wrote its row
    numpy.testing.assert_allclose(logs[1], logs[0], **TOLERANCE)
    with numpy.load(runs[0] / "checkpoint.npz") as ref, numpy.load(runs[1] / "checkpoint.npz") as dev:
        arrays = [k for k in ref.files if k.startswith(("param/", "adam_"))]
        assert arrays and sorted(arrays) == sorted(k for k in dev.files if k.startswith(("param/", "adam_")))
        for k in arrays:
            numpy.testing.assert_allclose(dev[k], ref[k], err_msg=k, **TOLERANCE)
    scores = [json.loads((run / "metrics.json").read_text())["models"] for run in runs]
    dci = [model.pop("dci") for model in scores[1]]
    assert all(0 <= d["disentanglement"] <= 1 for d in dci), dci
    assert {"mig", "mic_groups", "sap", "modularity", "factorvae"} <= set(scores[0][0])
    for (path, ref), (path_dev, dev) in zip(numbers(scores[0]), numbers(scores[1]), strict=True):
        assert path == path_dev
        if isinstance(ref, (int, float)) and not isinstance(ref, bool):
            assert dev == pytest.approx(ref, rel=TOLERANCE["rtol"], abs=TOLERANCE["atol"]), path
        else:
            assert dev == ref, path
