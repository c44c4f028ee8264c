"""The hands-on notebook. notebooks/handson.py (jupytext's percent format) holds its cells as
text; notebooks/handson.ipynb holds the same cells with the outputs of one run of them, top to
bottom (`python scripts/execute_notebook.py` writes it), so that its pictures show where the
repository is browsed. Here: the two hold the same cells; the stored outputs are whole (every
cell ran, in order, none failed, every cell that draws has its picture); and the cells run top
to bottom in a real Jupyter kernel, on the array module they pick on this machine, in their
short setting (TINYVAE_NOTEBOOK_QUICK=1: 40 training steps), and say what they teach."""
import ast
import glob
import inspect
import os

import jupytext
import nbformat
import pytest
from nbclient.exceptions import CellExecutionError

from conftest import CUPY, standin_env   # CUPY: None where CuPy cannot run (no CUDA device)
from scripts.execute_notebook import NOTEBOOK, ROOT, TEXT
from scripts.execute_notebook import execute as run_cells
from tinyvae.vae import route

REGENERATE = "python scripts/execute_notebook.py"
DRAWS = {"plt.show", "mosaic", "draw_model"}    # the calls that put a picture in a cell's output
MAX_BYTES = 400_000                         # pictures at a modest dpi keep the file small
# What the cells print, on either array module and in either setting.
TAUGHT = ["z_1's columns exactly zero under the routing: True",
          "the first backward's gradients kept after the second: True",
          "routing 'none' against the total loss: 14 arrays within tolerance",
          "routing 'paper' against the total loss: 6 encoder arrays fail",
          "routing 'paper' against the surrogate: 14 arrays within tolerance",
          "the broken routing against the surrogate: 6 arrays fail",
          "the real routing, again: 14 arrays within tolerance"]


def execute(nb, monkeypatch):
    """Run every cell of `nb` in a fresh python3 kernel whose working directory is notebooks/,
    as Jupyter starts one there; CellExecutionError at the first cell that raises."""
    monkeypatch.setenv("TINYVAE_NOTEBOOK_QUICK", "1")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    return run_cells(nb, timeout=600)


def draws(source):
    """Whether a cell draws: it calls one of DRAWS outside a function definition (a cell
    that only defines a drawing function shows nothing)."""
    tree = ast.parse("\n".join(line for line in source.splitlines()
                               if not line.lstrip().startswith("%")))
    defined = {id(node) for fn in ast.walk(tree) if isinstance(fn, ast.FunctionDef)
               for node in ast.walk(fn)}
    return any(isinstance(node, ast.Call) and id(node) not in defined
               and ast.unparse(node.func) in DRAWS for node in ast.walk(tree))


def check_outputs(nb):
    """Every code cell ran without error, and every cell that draws has a PNG; returns the
    printed text and the number of pictures."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    drawing = [c for c in code if draws(c.source)]
    assert len(drawing) >= 7, "the notebook's figures: sections 1, 2, 6 and four in 7"
    for c in code:
        errors = [o for o in c.outputs if o.output_type == "error"]
        assert not errors, f"a cell failed: {errors[0].get('ename')}\n{c.source[:200]}"
    for c in drawing:
        assert any("image/png" in o.get("data", {}) for o in c.outputs), (
            f"a cell that draws has no picture in its output:\n{c.source[:200]}")
    outputs = [o for c in code for o in c.outputs]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    return text, sum("image/png" in o.get("data", {}) for o in outputs)


def test_the_notebook_runs_top_to_bottom_and_shows_what_it_teaches(monkeypatch):
    nb = execute(jupytext.read(TEXT), monkeypatch)
    text, pictures = check_outputs(nb)
    # The notebook takes CuPy wherever CuPy can run, as a student with a GPU gets it; the test
    # runs it as it is, so on such a machine it checks the GPU path, not a NumPy-only variant.
    # Its gradient check is on NumPy always, so the lines below hold on either module.
    assert f"array module: {'numpy' if CUPY is None else 'cupy'}" in text
    for line in TAUGHT + ["40 steps of 4 models in"]:
        assert line in text
    committed = glob.glob(os.path.join(ROOT, "results", "models", "*", "params.npz"))
    assert committed and all(os.path.basename(os.path.dirname(p)) in text for p in committed)
    # sections 1, 2 and 6 one each; in 7 the reconstructions, a traversal per model (the
    # committed ones and your two), the prior's samples, the gradient flow
    assert pictures == 3 + 1 + (len(committed) + 2) + 1 + 1


def test_the_notebook_runs_on_the_cupy_standin(monkeypatch):
    """The GPU path of the notebook, checked without a GPU: the kernel's `import cupy` gives
    the tests' strict stand-in (tests/cupy_standin/), so a device array that meets NumPy
    implicitly anywhere in the cells fails the run, as real CuPy would."""
    monkeypatch.setenv("PYTHONPATH", standin_env()["PYTHONPATH"])
    nb = execute(jupytext.read(TEXT), monkeypatch)
    text, _ = check_outputs(nb)
    assert "array module: cupy" in text
    for line in TAUGHT + ["40 steps of 4 models in"]:
        assert line in text


def test_a_failing_cell_fails_the_run(monkeypatch):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1"),
                                         nbformat.v4.new_code_cell("1 / 0"),
                                         nbformat.v4.new_code_cell("x = 2")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    with pytest.raises(CellExecutionError, match="ZeroDivisionError"):
        execute(nb, monkeypatch)
    assert nb.cells[2].get("outputs", []) == [] and nb.cells[2].get("execution_count") is None


def test_the_notebook_and_its_text_form_hold_the_same_cells():
    stored, text = nbformat.read(NOTEBOOK, as_version=4), jupytext.read(TEXT)
    assert len(stored.cells) >= 20
    assert ([(c.cell_type, c.source) for c in stored.cells]
            == [(c.cell_type, c.source) for c in text.cells]), (
        f"notebooks/handson.ipynb and handson.py differ: after editing handson.py, run "
        f"`{REGENERATE}` (it runs the cells and writes the notebook with their outputs)")
    assert stored.metadata["kernelspec"]["name"] == "python3"


def test_the_stored_notebook_carries_the_outputs_of_a_full_run():
    """So that its pictures show without running it: every code cell ran, once, top to
    bottom in one kernel, without error; every cell that draws holds its picture; the
    training was a student's, not the tests' short one; and the file stays small."""
    stored = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in stored.cells if c.cell_type == "code"]
    hint = f"regenerate it with `{REGENERATE}`"
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), hint
    text, pictures = check_outputs(stored)
    for line in TAUGHT:
        assert line in text, hint
    assert inspect.getsource(route) in text, f"the routing shown is not today's: {hint}"
    assert "steps of 4 models in" in text and "40 steps of 4 models" not in text, hint
    assert pictures >= 9
    assert os.path.getsize(NOTEBOOK) <= MAX_BYTES, (
        f"notebooks/handson.ipynb is {os.path.getsize(NOTEBOOK):,} bytes, over {MAX_BYTES:,}: "
        "draw smaller pictures (plt.rcParams['figure.dpi'] in its first cell)")


def test_a_cell_that_only_defines_a_drawing_function_draws_nothing():
    assert draws("for m in models:\n    mosaic(rows, names, m)")
    assert draws("%matplotlib inline\nplt.show()")
    assert not draws("def mosaic(rows):\n    plt.show()")
    assert not draws("print(inspect.getsource(route))")
    assert not draws("print(show(dmu))")       # the notebook's own show() prints numbers
