"""The links of the README, the docs/ pages, the study log and the notes beside the results,
and the files under results/ and docs/ they name, are files the repository holds: figures and
results committed (or at least present and not ignored by git, so that `git add` takes them),
not only present on the machine that made them. Links to a heading (`page.md#anchor`,
`#anchor`) must name a heading of that page."""
import glob
import os
import re
import subprocess

import pytest

from test_docs import PAGES, ROOT, fenced_blocks, read

# Pages whose links are checked: the pages test_docs runs, and the notes beside the results
LINKED = PAGES + sorted(os.path.relpath(p, ROOT).replace(os.sep, "/")
                        for p in glob.glob(os.path.join(ROOT, "results", "*", "README.md")))

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
    assert len(links("README.md")) >= 6 and len(named("README.md")) >= 1
    assert {"docs/walkthrough.md", "docs/reproduction.md", "docs/speed.md"} <= set(PAGES)
    assert len(named("docs/reproduction.md")) >= 4
    assert "what-the-routing-does" in headings("docs/reproduction.md")
    assert "4-check-it-yourself" in headings("docs/walkthrough.md")
    assert {"results/study-log.md", "docs/claims.md", "results/models/README.md"} <= set(LINKED)
    assert ("results/study-log.md", "t1-how-often-the-second-group-opens") in links(
        "docs/routing.md")


@pytest.mark.parametrize("page", LINKED)
def test_every_file_a_page_links_or_names_exists(page):
    files = {path for path, _ in links(page)} | named(page)
    absent = sorted(f for f in files if not os.path.exists(os.path.join(ROOT, f)))
    assert not absent, f"{page} links or names files that do not exist: {absent}"


@pytest.mark.parametrize("page", LINKED)
def test_every_file_a_page_links_or_names_is_held_by_the_repository(page):
    held = held_files()
    if held is None:
        pytest.skip("not a git checkout: which files the repository holds cannot be asked")
    folders = {os.path.dirname(f) for f in held}
    files = {path for path, _ in links(page)} | named(page)
    missing = sorted(f for f in files if f not in held and f not in folders)
    assert not missing, f"{page} links or names files git neither tracks nor would add: {missing}"


@pytest.mark.parametrize("page", LINKED)
def test_every_anchor_a_page_links_is_a_heading(page):
    bad = [f"{path}#{anchor}" for path, anchor in links(page)
           if anchor and path.endswith(".md") and anchor not in headings(path)]
    assert not bad, f"{page} links to headings that do not exist: {bad}"


def table_files(text):
    """The files named in the first column of a markdown table's rows: `path` | ..."""
    return re.findall(r"^\| `([^`]+)` \|", text, flags=re.M)


def package_modules():
    """tinyvae's modules, package __init__.py files aside: (core, one folder down)."""
    package = [os.path.relpath(p, ROOT).replace(os.sep, "/") for p in
               glob.glob(os.path.join(ROOT, "tinyvae", "**", "*.py"), recursive=True)
               if not p.endswith("__init__.py")]
    return (sorted(p for p in package if p.count("/") == 1),
            sorted(p for p in package if p.count("/") >= 2))


def test_the_layout_page_holds_every_module_in_its_part():
    """docs/layout.md lists the modules of tinyvae/ itself under the core and those in its
    folders under the machinery; a module added or moved without a line there fails here. No
    line counts: a table of sizes is a page that drifts with every commit."""
    page = read("docs/layout.md")
    core, machinery = page.split("## The core, read these\n")[1].split("## The machinery\n")
    want_core, want_machinery = package_modules()
    assert sorted(table_files(core)) == want_core
    assert sorted(p for p in table_files(machinery)
                  if p.startswith("tinyvae/") and p.endswith(".py")) == want_machinery
    for path in table_files(page):
        assert os.path.exists(os.path.join(ROOT, path.rstrip("/"))), f"docs/layout.md: {path}"


def test_the_readme_names_the_core_and_points_to_the_rest():
    """The README's table is the core, all of it and nothing else; the rest is a link away."""
    core = read("README.md").split("## The core, read these\n")[1].split("\n## ")[0]
    assert sorted(table_files(core)) == package_modules()[0]
    assert "(docs/layout.md)" in core


def test_the_readme_is_a_first_page():
    """The README stays a first page: at most 160 lines, the rest a link away."""
    assert len(read("README.md").rstrip("\n").split("\n")) <= 160


def test_the_readme_code_fits_a_page_without_scrolling():
    """Every line of the README's code blocks is at most 100 columns wide."""
    wide = [(start, line) for _, code, start, _ in fenced_blocks(read("README.md"))
            for line in code.split("\n") if len(line) > 100]
    assert not wide, f"README code lines over 100 columns (block line, text): {wide}"
