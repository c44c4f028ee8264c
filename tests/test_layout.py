"""The layout a reader relies on: tinyvae installs and imports from anywhere; its modules import
one another without a cycle and without reaching for a neighbour's private names, and its
folders import one another one way only; the core (tinyvae/*.py) imports nothing of the
machinery one folder down; nothing imports the two commands or edits sys.path to find the
package. Imports are read from the modules' own
statements (ast), lazy ones inside functions included."""
import ast
import glob
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "tinyvae")


def modules():
    """{dotted name: path} of every module of the package; a package is its __init__.py."""
    out = {}
    for path in glob.glob(os.path.join(PACKAGE, "**", "*.py"), recursive=True):
        parts = os.path.relpath(path, ROOT)[:-3].split(os.sep)
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


def graph():
    known = modules()
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


def folder(path):
    """The folder a module lies in, as a package name: tinyvae (the core), tinyvae.data, ..."""
    inner = os.path.relpath(os.path.dirname(path), PACKAGE)
    return "tinyvae" if inner == "." else "tinyvae." + inner.split(os.sep)[0]


def test_no_import_cycle():
    edges = {name: {target for target, _ in found if target != name}
             for name, found in graph().items()}
    found = cycle(edges)
    assert found is None, "import cycle: " + " -> ".join(found)


def test_the_folders_import_one_way():
    """Modules can be free of cycles while their folders are not: a module of data importing
    one of experiment, while experiment imports data, ties the two folders together, and data
    no longer reads (or installs) without the machinery. Folder by folder, the imports go one
    way: experiment may import data and metrics, metrics may import data, data neither."""
    where = {name: folder(path) for name, path in modules().items()}
    edges = {f: set() for f in where.values()}
    for name, found in graph().items():
        edges[where[name]] |= {where[target] for target, _ in found} - {where[name]}
    found = cycle(edges)
    assert found is None, "import cycle between folders: " + " -> ".join(found)
    bad = [f"{name} imports {target}" for name, found in graph().items()
           if where[name] in ("tinyvae.data", "tinyvae.metrics")
           for target, _ in found if where[target] == "tinyvae.experiment"]
    assert not bad, bad


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
