"""The README's links and the result files it names are files the repository holds: figures
and results committed, not only present on the machine that made them."""
import os
import re
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_every_file_the_readme_links_or_names_under_results_is_tracked():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    links = {m for m in re.findall(r"\]\(([^)#\s]+)\)", text) if "://" not in m}
    named = {m for m in re.findall(r"`(results/[^`\s*]+\.\w+)`", text)}
    assert len(links) >= 4 and len(named) >= 4        # the figures and tables: the regexes match
    tracked = set(subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                                 check=True).stdout.split())
    missing = sorted(path for path in links | named if path not in tracked)
    assert not missing, f"README names files git does not track: {missing}"
