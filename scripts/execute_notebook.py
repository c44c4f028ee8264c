"""Write notebooks/handson.ipynb, outputs included, by running the cells of its text twin
notebooks/handson.py top to bottom in a fresh python3 kernel started in notebooks/, as
Jupyter starts one there:

    python scripts/execute_notebook.py

It trains as a student's run does (minutes on a laptop CPU), whatever
TINYVAE_NOTEBOOK_QUICK says in the calling shell, on one OpenBLAS thread unless
OPENBLAS_NUM_THREADS says otherwise: OpenBLAS rounds some products differently on one thread
than on two, so one thread gives the stored numbers back on the same BLAS; and on a busy
machine its idle threads spin on the cores the training needs (0.95 s a step against 0.14 s
on one thread, 2 cores at a load average of 6). A cell that raises stops it with that
cell's error and exit status 1, and the stored notebook is left as it was. Cell ids are
derived from each cell's text, so cells that did not change keep their ids and the
notebook's diff stays small. Each picture is stored as a PNG with a palette of at most 256
colours: exact for the image mosaics (greys only), near enough for the drawings, and under
half the bytes.
"""
import base64
import hashlib
import io
import os
import sys

import jupytext
import nbformat
from PIL import Image
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = os.path.join(ROOT, "notebooks")
TEXT, NOTEBOOK = (os.path.join(NOTEBOOKS, "handson" + ext) for ext in (".py", ".ipynb"))


def execute(nb, timeout=1800):
    """Run every cell of `nb` in place in a fresh python3 kernel whose working directory is
    notebooks/; CellExecutionError at the first cell that raises."""
    NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": NOTEBOOKS}}).execute()
    return nb


def text_notebook():
    """The notebook that handson.py describes, without outputs, each cell's id taken from
    its type and text (and its place, where two cells are the same)."""
    nb = jupytext.read(TEXT)
    seen = set()
    for k, cell in enumerate(nb.cells):
        key = f"{cell.cell_type}\n{cell.source}"
        cell.id = hashlib.sha1(key.encode()).hexdigest()[:8]
        if cell.id in seen:
            cell.id = hashlib.sha1(f"{k}\n{key}".encode()).hexdigest()[:8]
        seen.add(cell.id)
    return nb


def palette_pngs(nb):
    """Re-encode every PNG output of `nb` in place with a palette of at most 256 colours."""
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" in data:
                image = Image.open(io.BytesIO(base64.b64decode(data["image/png"])))
                buffer = io.BytesIO()
                image.convert("RGB").quantize(256).save(buffer, "PNG", optimize=True)
                data["image/png"] = base64.b64encode(buffer.getvalue()).decode("ascii")


def main():
    os.environ.pop("TINYVAE_NOTEBOOK_QUICK", None)           # the student's run, not the tests'
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")         # the kernel inherits both
    nb = text_notebook()
    try:
        execute(nb)
    except CellExecutionError as err:
        print(f"execute_notebook: a cell of {os.path.relpath(TEXT, ROOT)} failed, "
              f"{os.path.relpath(NOTEBOOK, ROOT)} is unchanged:\n{err}", file=sys.stderr)
        return 1
    palette_pngs(nb)
    nbformat.validate(nb)
    nbformat.write(nb, NOTEBOOK)
    print(f"wrote {os.path.relpath(NOTEBOOK, ROOT)}: {os.path.getsize(NOTEBOOK):,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
