"""The layout a reader relies on: tinyvae installs and imports from anywhere; its modules import
one another without a cycle and without reaching for a neighbour's private names; its rooms
(the core, data/, metrics/, and the five rooms of experiment/) import one another only as the
table MAY_IMPORT below declares; the core (tinyvae/*.py) imports nothing of the machinery one
folder down, nor a plotting library; nothing imports the two commands or edits sys.path to
find the package. Imports are read from the modules' own statements (ast), lazy ones inside
functions included."""
import ast
import glob
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "tinyvae")

# Which rooms each room may import (itself aside). A room is a folder of the package: the core
# (tinyvae/*.py), data/, metrics/, and experiment's five rooms; experiment/__init__.py, the
# package's face, hands on load_run. The rooms of experiment go down the list: a run knows
# nothing of how it is scored, scoring nothing of the reports, and so on.
FOUNDATION = {"tinyvae", "tinyvae.data", "tinyvae.metrics"}
MAY_IMPORT = {
    "tinyvae": set(),
    "tinyvae.data": {"tinyvae"},
    "tinyvae.metrics": {"tinyvae", "tinyvae.data"},
    "tinyvae.experiment.run": FOUNDATION,
    "tinyvae.experiment.scoring": FOUNDATION | {"tinyvae.experiment.run"},
    "tinyvae.experiment.reports": FOUNDATION | {"tinyvae.experiment.run",
                                                "tinyvae.experiment.scoring"},
    "tinyvae.experiment.studies": FOUNDATION | {"tinyvae.experiment.run",
                                                "tinyvae.experiment.scoring",
                                                "tinyvae.experiment.reports"},
    "tinyvae.experiment.tools": FOUNDATION | {"tinyvae.experiment.run",
                                              "tinyvae.experiment.scoring"},
    "tinyvae.experiment": {"tinyvae.experiment.run"},
}


def modules(root=ROOT):
    """{dotted name: path} of every module of the package; a package is its __init__.py."""
    out = {}
    for path in glob.glob(os.path.join(root, "tinyvae", "**", "*.py"), recursive=True):
        parts = os.path.relpath(path, root)[:-3].split(os.sep)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports(name, path, known):
    """[(imported module, [names taken from it])] of one module, within the package."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names if a.name in known]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - (node.level - 1)] \
                if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            for a in node.names:
                if f"{target}.{a.name}" in known:          # `from . import optim_fast`
                    out.append((f"{target}.{a.name}", []))
                elif target in known:
                    out.append((target, [a.name]))
    return out


def graph(root=ROOT):
    known = modules(root)
    return {name: imports(name, path, known) for name, path in known.items()}


def test_the_package_imports_from_outside_the_repository(tmp_path):
    """After `pip install -e .` (requirements.txt does it), every module imports from any
    directory, and it is this checkout's code that runs."""
    names = sorted(modules())
    code = ("import importlib, importlib.metadata, sys\n"
            f"for name in {names!r}:\n"
            "    importlib.import_module(name)\n"
            "import tinyvae\n"
            "print(tinyvae.__file__)\n"
            "print(importlib.metadata.version('tinyvae'))\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, ("tinyvae does not import outside the repository: run "
                                  f"`pip install -e .` there\n{done.stderr}")
    where, version = done.stdout.split()
    assert where == os.path.join(PACKAGE, "__init__.py") and version


def cycle(edges):
    """One import cycle of the graph {name: {names it imports}} as a path, or None."""
    state = {}

    def visit(name, path):
        state[name] = "open"
        for target in sorted(edges[name]):
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state:
                found = visit(target, path + [target])
                if found:
                    return found
        state[name] = "done"
        return None

    for name in sorted(edges):
        if name not in state:
            found = visit(name, [name])
            if found:
                return found
    return None


def room(path, root=ROOT):
    """The room of the module at `path`, as a package name: tinyvae (the core), tinyvae.data,
    tinyvae.metrics, tinyvae.experiment.run, ...; tinyvae.experiment for experiment/'s own
    files (the face, and a module put there that no room takes)."""
    inner = os.path.relpath(os.path.dirname(path), os.path.join(root, "tinyvae")).split(os.sep)
    if inner == ["."]:
        return "tinyvae"
    return ".".join(["tinyvae"] + inner[:2 if inner[0] == "experiment" else 1])


def wrong_imports(root=ROOT):
    """Every import between rooms that MAY_IMPORT does not allow, and every module that lies
    in no room: [text]."""
    found = graph(root)
    paths = modules(root)
    bad = [f"{name} lies straight in tinyvae/experiment/: put it in one of its rooms "
           f"({', '.join(r.rpartition('.')[2] for r in MAY_IMPORT if r.count('.') == 2)})"
           for name, path in paths.items()
           if os.path.dirname(path) == os.path.join(root, "tinyvae", "experiment")
           and not path.endswith("__init__.py")]
    for name, targets in found.items():
        for target, _ in targets:
            a, b = room(paths[name], root), room(paths[target], root)
            if a != b and b not in MAY_IMPORT.get(a, set()):
                bad.append(f"{name} ({a}) imports {target} ({b})")
    return bad


def test_no_import_cycle():
    edges = {name: {target for target, _ in found if target != name}
             for name, found in graph().items()}
    found = cycle(edges)
    assert found is None, "import cycle: " + " -> ".join(found)


def test_the_rooms_import_only_as_declared():
    """Modules can be free of cycles while their rooms are not: a module of data importing one
    of experiment, while experiment imports data, ties the two together, and data no longer
    reads (or installs) without the machinery. Room by room, the imports follow MAY_IMPORT,
    and the table itself goes one way."""
    assert {room(path) for path in modules().values()} == set(MAY_IMPORT)
    assert cycle({r: set(MAY_IMPORT[r]) for r in MAY_IMPORT}) is None
    assert wrong_imports() == []


def test_the_room_check_catches_a_planted_import(tmp_path):
    """The check above on a copy of the package with one wrong import planted: the run's
    trainer reaching up into the reports, and a module left straight in experiment/."""
    shutil.copytree(PACKAGE, tmp_path / "tinyvae",
                    ignore=shutil.ignore_patterns("__pycache__"))
    assert wrong_imports(tmp_path) == []
    trainer = tmp_path / "tinyvae" / "experiment" / "run" / "trainer.py"
    trainer.write_text(trainer.read_text() + "\n\ndef late():\n"
                       "    from ..reports.full_report import write_report\n"
                       "    return write_report\n")
    (tmp_path / "tinyvae" / "experiment" / "loose.py").write_text("from .run import lock\n")
    bad = wrong_imports(tmp_path)
    assert bad[0].startswith("tinyvae.experiment.loose lies straight in tinyvae/experiment/")
    assert bad[1:] == ["tinyvae.experiment.run.trainer (tinyvae.experiment.run) imports "
                       "tinyvae.experiment.reports.full_report (tinyvae.experiment.reports)"]


def test_no_module_imports_a_private_name_of_another():
    bad = [f"{name} imports {taken} from {target}"
           for name, found in graph().items() for target, names in found if target != name
           for taken in names if taken.startswith("_") and not taken.startswith("__")]
    assert not bad, bad


def test_the_core_imports_nothing_of_the_machinery():
    """tinyvae/*.py read alone: the subpackages depend on the core, never the other way."""
    core = {name for name, path in modules().items()
            if os.path.dirname(path) == PACKAGE}
    bad = [f"{name} imports {target}" for name, found in graph().items() if name in core
           for target, _ in found if target not in core]
    assert not bad, bad
    assert {"tinyvae.vae", "tinyvae.optim", "tinyvae.routing_report"} <= core


def test_the_core_imports_no_plotting_library():
    """routing_report.draw_gradient_flow draws on axes its caller makes: the core reads, and
    installs, without matplotlib."""
    for path in glob.glob(os.path.join(PACKAGE, "*.py")):
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        names = [a.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for a in node.names]
        names += [node.module or "" for node in ast.walk(tree)
                  if isinstance(node, ast.ImportFrom)]
        assert not [n for n in names if n.split(".")[0] == "matplotlib"], path


def test_nothing_imports_the_commands_or_edits_sys_path():
    """train.py and evaluate.py are wired from the package; only their own tests call their
    main. The package and scripts find tinyvae installed, not through sys.path."""
    for path in (glob.glob(os.path.join(PACKAGE, "**", "*.py"), recursive=True)
                 + glob.glob(os.path.join(ROOT, "scripts", "**", "*.py"), recursive=True)
                 + [os.path.join(ROOT, "train.py"), os.path.join(ROOT, "evaluate.py")]):
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                found = [node.module or ""]
            else:
                continue
            assert not {"train", "evaluate"} & set(found), f"{path} imports {found}"
    for path in glob.glob(os.path.join(ROOT, "**", "*.py"), recursive=True):
        if os.sep + "." in os.path.relpath(path, ROOT) or path.endswith("test_layout.py"):
            continue                                       # .venv and the like; this file
        with open(path, encoding="utf-8") as f:
            assert "sys.path.insert" not in f.read(), path
