"""The README's and docs/ pages' links, and the files under results/ and docs/ they name, are
files the repository holds: figures and results committed (or at least present and not
ignored by git, so that `git add` takes them), not only present on the machine that made
them. Links to a heading (`page.md#anchor`, `#anchor`) must name a heading of that page."""
import glob
import os
import re
import subprocess

import pytest

from test_docs import PAGES, ROOT, read

LINK = re.compile(r"\]\(([^)\s]+)\)")
NAMED = re.compile(r"`((?:results|docs)/[^`\s*]+\.\w+)`")


def links(page):
    """(target path from the repository root, anchor or None) of every relative link."""
    out = []
    for target in LINK.findall(read(page)):
        if "://" in target or target.startswith("mailto:"):
            continue
        path, _, anchor = target.partition("#")
        path = (os.path.normpath(os.path.join(os.path.dirname(page), path)) if path
                else page)
        out.append((path.replace(os.sep, "/"), anchor or None))
    return out


def named(page):
    """Files under results/ or docs/ named in backticks: paths from the repository root."""
    return set(NAMED.findall(read(page)))


def headings(page):
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces to -."""
    text = re.sub(r"```.*?```", "", read(page), flags=re.S)
    titles = re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, flags=re.M)
    return {re.sub(r"[^\w\- ]", "", t.lower()).replace(" ", "-") for t in titles}


def held_files():
    """Tracked files, and untracked ones that git does not ignore (what `git add` takes); None
    outside a git checkout (an unpacked copy), where only existence can be checked."""
    try:
        out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return set(out.split("\n")) - {""}


def test_the_rules_match():
    """The README links and names its figures and tables; the docs pages exist and link."""
    assert len(links("README.md")) >= 6 and len(named("README.md")) >= 2
    assert {"docs/walkthrough.md", "docs/reproduction.md", "docs/speed.md"} <= set(PAGES)
    assert len(named("docs/reproduction.md")) >= 4
    assert "what-the-routing-does" in headings("docs/reproduction.md")
    assert "4-check-it-yourself" in headings("docs/walkthrough.md")


@pytest.mark.parametrize("page", PAGES)
def test_every_file_a_page_links_or_names_exists(page):
    files = {path for path, _ in links(page)} | named(page)
    absent = sorted(f for f in files if not os.path.exists(os.path.join(ROOT, f)))
    assert not absent, f"{page} links or names files that do not exist: {absent}"


@pytest.mark.parametrize("page", PAGES)
def test_every_file_a_page_links_or_names_is_held_by_the_repository(page):
    held = held_files()
    if held is None:
        pytest.skip("not a git checkout: which files the repository holds cannot be asked")
    folders = {os.path.dirname(f) for f in held}
    files = {path for path, _ in links(page)} | named(page)
    missing = sorted(f for f in files if f not in held and f not in folders)
    assert not missing, f"{page} links or names files git neither tracks nor would add: {missing}"


@pytest.mark.parametrize("page", PAGES)
def test_every_anchor_a_page_links_is_a_heading(page):
    bad = [f"{path}#{anchor}" for path, anchor in links(page)
           if anchor and path.endswith(".md") and anchor not in headings(path)]
    assert not bad, f"{page} links to headings that do not exist: {bad}"


def line_count(path):
    with open(os.path.join(ROOT, path)) as f:
        return sum(1 for _ in f)


def layout_tables():
    """{"core": rows, "machinery": rows} of 'What is in the box': (path, lines) per counted row."""
    box = read("README.md").split("## What is in the box\n")[1].split("\n## ")[0]
    core, machinery = box.split("### The core, read these\n")[1].split("### The machinery\n")
    row = re.compile(r"^\| `([^`]+)` \| (\d+) \|", flags=re.M)
    return {"core": row.findall(core), "machinery": row.findall(machinery)}


def roughly(stated, actual):
    """A stated length still describes the file: within a tenth, or 10 lines for short ones.
    It is a size to read by, not a checksum: a few lines more or less do not make it stale."""
    return abs(stated - actual) <= max(10, actual / 10)


def test_the_layout_table_gives_each_file_its_size():
    """'What is in the box' gives each file's length and the package's: a count that no longer
    describes the file (a module that doubled, or was split) is a page that drifted."""
    tables = layout_tables()
    assert len(tables["core"]) + len(tables["machinery"]) >= 15
    for path, lines in tables["core"] + tables["machinery"]:
        assert roughly(int(lines), line_count(path)), (
            f"README's layout table: {path} has {line_count(path)} lines, the table says {lines}")
    package = [os.path.relpath(p, ROOT).replace(os.sep, "/") for p in
               glob.glob(os.path.join(ROOT, "tinyvae", "**", "*.py"), recursive=True)]
    core = [p for p in package if p.count("/") == 1]
    total, core_total = sum(map(line_count, package)), sum(map(line_count, core))
    stated = re.search(r"`tinyvae/` is ([\d,]+) lines in all, of which the core is ([\d,]+) lines",
                       " ".join(read("README.md").split()))
    assert stated, "README's layout section no longer states the package's length"
    assert roughly(int(stated[1].replace(",", "")), total), (total, stated[0])
    assert roughly(int(stated[2].replace(",", "")), core_total), (core_total, stated[0])


@pytest.mark.parametrize("stated, actual, ok", [(100, 105, True), (100, 120, False),
                                                (50, 58, True), (50, 61, False)])
def test_a_size_is_stale_when_it_no_longer_describes_the_file(stated, actual, ok):
    assert roughly(stated, actual) is ok


def test_the_layout_tables_hold_every_module_in_its_part():
    """The core table lists the modules of tinyvae/ itself, the machinery table those one
    folder down (package __init__.py files aside)."""
    tables = layout_tables()
    package = [os.path.relpath(p, ROOT).replace(os.sep, "/") for p in
               glob.glob(os.path.join(ROOT, "tinyvae", "**", "*.py"), recursive=True)
               if not p.endswith("__init__.py")]
    assert sorted(p for p, _ in tables["core"]) == sorted(p for p in package
                                                          if p.count("/") == 1)
    assert (sorted(p for p, _ in tables["machinery"] if p.startswith("tinyvae/"))
            == sorted(p for p in package if p.count("/") == 2))
