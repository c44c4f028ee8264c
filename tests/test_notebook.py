"""The hands-on notebook (notebooks/handson.ipynb) runs top to bottom in a real Jupyter kernel,
on the array module it picks on this machine, in its short setting (TINYVAE_NOTEBOOK_QUICK=1:
40 training steps), and says what it teaches; a failing cell fails the test. The notebook is stored without outputs beside its
text form (notebooks/handson.py, jupytext's percent format), and the two hold the same cells."""
import glob
import os

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from conftest import CUPY    # None where CuPy cannot run (not installed, no CUDA device)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = os.path.join(ROOT, "notebooks")
NOTEBOOK, TEXT = (os.path.join(NOTEBOOKS, "handson" + ext) for ext in (".ipynb", ".py"))


def execute(nb, monkeypatch):
    """Run every cell of `nb` in a fresh python3 kernel whose working directory is notebooks/,
    as Jupyter starts one there; CellExecutionError at the first cell that raises."""
    monkeypatch.setenv("TINYVAE_NOTEBOOK_QUICK", "1")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": NOTEBOOKS}}).execute()
    return nb


def test_the_notebook_runs_top_to_bottom_and_shows_what_it_teaches(monkeypatch):
    nb = execute(nbformat.read(NOTEBOOK, as_version=4), monkeypatch)
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    # The notebook takes CuPy wherever CuPy can run, as a student with a GPU gets it; the test
    # runs it as it is, so on such a machine it checks the GPU path, not a NumPy-only variant.
    # Its gradient check is on NumPy always, so the lines below hold on either module.
    assert f"array module: {'numpy' if CUPY is None else 'cupy'}" in text
    assert "z_1's columns exactly zero under the routing: True" in text
    assert "routing 'none' against the total loss: 14 arrays within tolerance" in text
    assert "routing 'paper' against the total loss: 6 encoder arrays fail" in text
    assert "routing 'paper' against the surrogate: 14 arrays within tolerance" in text
    assert "40 steps of 4 models in" in text
    committed = glob.glob(os.path.join(ROOT, "results", "models", "*", "params.npz"))
    if committed:
        assert "COMMITTED MODELS, loaded from results/models/" in text
    else:
        assert "No committed model in results/models/ here" in text
    # KL curves, the reconstructions, and a traversal and a gradient-flow drawing per model
    assert len(images) == 2 + 2 * (len(committed) or 2)


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
    """Edit either, then `jupytext --sync notebooks/handson.ipynb` writes the other."""
    stored, text = nbformat.read(NOTEBOOK, as_version=4), jupytext.read(TEXT)
    assert len(stored.cells) >= 20
    assert ([(c.cell_type, c.source) for c in stored.cells]
            == [(c.cell_type, c.source) for c in text.cells]), (
        "notebooks/handson.ipynb and handson.py differ: after editing one, run "
        "`jupytext --sync notebooks/handson.ipynb` (it updates the older from the newer and "
        "keeps the cells' ids, so the notebook's diff stays small)")
    assert stored.metadata["kernelspec"]["name"] == "python3"


def test_the_stored_notebook_has_no_outputs():
    """Outputs (pictures as base64) would make every diff unreadable; a student's run
    makes them."""
    stored = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in stored.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code), (
        "store notebooks/handson.ipynb without outputs: clear them (in Jupyter: Edit > "
        "Clear Outputs of All Cells) and save")
