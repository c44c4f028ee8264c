"""The pages teach with code that runs: every ```python block of README.md, docs/*.md and the
study log beside the results it reads (results/study-log.md) runs here, and prints what the
page says it prints.

- A page's ```python blocks run in order in one interactive interpreter (`python -i`, cwd:
  the repository root), each followed by an empty line, as a reader pasting them at the `>>>`
  prompt and pressing Enter would: an indented block followed directly by an unindented line
  is a SyntaxError there (not under exec), and anything written to stderr (a traceback, a
  warning) fails the page.
- A ```text block that follows a ```python block with only blank lines between is that
  block's output. The printed text must equal it, or else match it line by line with runs of
  spaces collapsed and every number written with a decimal point or an exponent within one
  unit of its last printed digit (float rounding can differ across BLAS builds). Integers,
  words, and the routing's exact zeros ("0") must match exactly.
- A fence with no language quotes code. When its first line is `# FILE.py, NAME` (FILE.py a
  path from the repository root), every other line but `...` must appear in that file as
  written (runs of spaces aside): a quote cannot drift away from the code it quotes. Where
  NAME is a function of FILE.py's top level and the quote has no `...`, it is that function
  whole, every line in order: an excerpt says so with `...`.
"""
import ast
import glob
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = (["README.md"] + sorted(os.path.relpath(p, ROOT).replace(os.sep, "/")
                                for p in glob.glob(os.path.join(ROOT, "docs", "*.md")))
         + ["results/study-log.md"])
NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
QUOTE_HEADER = re.compile(r"#\s+([\w./-]+\.py)\b(?:,[ \t]*(\w+)[ \t]*$)?", re.M)  # file, name


def read(page):
    """A page's text; `page` is a path from the repository root."""
    with open(os.path.join(ROOT, page), encoding="utf-8") as f:
        return f.read()


def fenced_blocks(text):
    """[(language, code, first line number, blank-only text before the fence?)] in page order."""
    blocks, lines, k = [], text.split("\n"), 0
    gap_blank = False
    while k < len(lines):
        m = re.match(r"^(\s*)```\s*([\w+-]*)\s*$", lines[k])
        if not m:
            gap_blank = gap_blank and not lines[k].strip()
            k += 1
            continue
        indent, lang, start = len(m.group(1)), m.group(2).lower(), k + 1
        k += 1
        body = []
        while k < len(lines) and not re.match(r"^\s*```\s*$", lines[k]):
            body.append(lines[k][indent:] if lines[k][:indent].strip() == "" else lines[k])
            k += 1
        assert k < len(lines), f"unclosed ``` fence opened at line {start}"
        blocks.append((lang, "\n".join(body), start, gap_blank))
        k += 1
        gap_blank = True            # until a non-blank line: what follows may be this output
    return blocks


def pages_with(lang):
    out = []
    for page in PAGES:
        if any(b[0] == lang for b in fenced_blocks(read(page))):
            out.append(page)
    return out


def same_output(shown, printed):
    """Exact, or the stated tolerance: last-digit float differences, spaces collapsed."""
    def lines(s):
        return [ln.rstrip() for ln in s.strip("\n").split("\n")]
    if lines(shown) == lines(printed):
        return True, ""
    a, b = lines(shown), lines(printed)
    if len(a) != len(b):
        return False, f"{len(a)} lines shown, {len(b)} printed"
    for n, (la, lb) in enumerate(zip(a, b)):
        words_a, words_b = NUMBER.split(la), NUMBER.split(lb)
        nums_a, nums_b = NUMBER.findall(la), NUMBER.findall(lb)
        if ([" ".join(w.split()) for w in words_a] != [" ".join(w.split()) for w in words_b]
                or len(nums_a) != len(nums_b)):
            return False, f"line {n + 1}: shown {la!r}, printed {lb!r}"
        for x, y in zip(nums_a, nums_b):
            if not _close(x, y):
                return False, f"line {n + 1}: shown {x}, printed {y} ({la!r} / {lb!r})"
    return True, ""


def _close(shown, printed):
    if not re.search(r"[.eE]", shown) or not re.search(r"[.eE]", printed):
        return shown == printed                    # integers and exact zeros: exactly
    return abs(float(shown) - float(printed)) <= 1.0001 * max(_unit(shown), _unit(printed))


def _unit(number):
    """One unit in the last printed digit: 0.0752 -> 1e-4, 1.2e-15 -> 1e-16, 2840.5 -> 0.1."""
    mantissa, _, exponent = number.lower().partition("e")
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    return 10.0 ** (int(exponent or 0) - decimals)


def run_at_the_prompt(blocks):
    """Feed code blocks [(code, line)] to one `python -i` in the repository root, each
    followed by an empty line; returns [(what it printed, what it wrote to stderr)] per
    block, the prompts (">>> ", "... ") left out of stderr."""
    stdin = "".join(f"{_mark(line)}\n{code}\n\n" for code, line in blocks)
    done = subprocess.run([sys.executable, "-i", "-q"], input=stdin, cwd=ROOT, text=True,
                          capture_output=True, timeout=600)
    outs, errs = (s.split(_MARKER)[1:] for s in (done.stdout, done.stderr))
    assert len(outs) == len(errs) == len(blocks), (
        f"the interpreter stopped early (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return [(o.split("\n", 1)[1], re.sub(r"(>>> |\.\.\. )", "", e.split("\n", 1)[1]))
            for o, e in zip(outs, errs)]


_MARKER = "@@ tests/test_docs.py: next block @@"


def _mark(line):
    """A one-line statement that prints the marker (and the block's line) to both streams;
    print returns None, so the prompt echoes nothing more."""
    text = f"{_MARKER} {line}"
    return f"print({text!r}); print({text!r}, file=__import__('sys').stderr)"


@pytest.mark.parametrize("page", pages_with("python"))
def test_every_python_block_runs_and_prints_what_the_page_shows(page):
    blocks = fenced_blocks(read(page))
    python = [(n, code, line) for n, (lang, code, line, _) in enumerate(blocks)
              if lang == "python"]
    results = run_at_the_prompt([(code, line) for _, code, line in python])
    for (n, code, line), (printed, errors) in zip(python, results):
        assert not errors.strip(), (f"{page}: the block at line {line}, pasted at the >>> "
                                    f"prompt, wrote to stderr:\n{errors}")
        follows = blocks[n + 1] if n + 1 < len(blocks) else None
        if follows and follows[0] == "text" and follows[3]:
            ok, why = same_output(follows[1], printed)
            assert ok, (f"{page}: the block at line {line} printed\n{printed}\n"
                        f"but the page shows (line {follows[2]})\n{follows[1]}\n({why})")


def test_the_prompt_sees_what_exec_does_not():
    """An indented block followed directly by an unindented line runs under exec but is a
    SyntaxError at the prompt, and a later block then meets a NameError: the test above
    sees both; with an empty line between the two, the prompt runs it."""
    code = "for k in range(3):\n    last = k\nprint(last)"
    exec(compile(code, "block", "exec"), {})
    (_, errors), (_, later) = run_at_the_prompt([(code, 1), ("print(last + 1)", 2)])
    assert "SyntaxError" in errors and "NameError" in later
    (printed, errors), = run_at_the_prompt([(code.replace("\nprint", "\n\nprint"), 1)])
    assert printed == "2\n" and not errors.strip()


@pytest.mark.parametrize("page", PAGES)
def test_quoted_code_is_the_code(page):
    blocks = fenced_blocks(read(page))
    for lang, code, line, _ in blocks:
        m = QUOTE_HEADER.match(code)
        if lang or not m:
            continue
        source = " ".join(read(m.group(1)).split())
        for quoted in code.split("\n")[1:]:
            quoted = " ".join(quoted.split())
            if quoted and quoted != "...":
                assert quoted in source, (f"{page}, quote at line {line}: {quoted!r} is not "
                                          f"in {m.group(1)}")


@pytest.mark.parametrize("page", PAGES)
def test_a_quoted_function_is_the_whole_function(page):
    """A quote headed `# FILE.py, name` (a function of FILE.py's top level) and without `...`
    shows that function whole: a dropped or reordered line fails, not only a changed one."""
    for lang, code, line, _ in fenced_blocks(read(page)):
        m = QUOTE_HEADER.match(code)
        if lang or not m or not m.group(2) or "..." in code.split("\n"):
            continue
        source = read(m.group(1))
        fn = next((f for f in ast.parse(source).body if isinstance(f, ast.FunctionDef)
                   and f.name == m.group(2)), None)
        if fn is None:
            continue
        whole = ast.get_source_segment(source, fn)
        assert code.split("\n", 1)[1].strip("\n").split() == whole.split(), (
            f"{page}, quote at line {line}: not the whole of {m.group(2)} in {m.group(1)}")


def test_the_walkthrough_is_checked():
    """The rules above do match: the walkthrough has runnable blocks, outputs and quotes."""
    blocks = fenced_blocks(read("docs/walkthrough.md"))
    langs = [b[0] for b in blocks]
    outputs = [n for n in range(1, len(blocks)) if blocks[n][0] == "text" and blocks[n][3]
               and blocks[n - 1][0] == "python"]
    quotes = [b for b in blocks if not b[0] and QUOTE_HEADER.match(b[1])]
    assert langs.count("python") >= 8 and len(outputs) >= 6 and len(quotes) >= 6


def test_the_readme_shows_the_routing_report_the_walkthrough_prints():
    """The README's report is not run there; the walkthrough prints it on the same batch (the
    one `train.py --explain --batch-size 8` uses) and the test above checks that output."""
    def report(page):
        return next(b[1] for b in fenced_blocks(read(page))
                    if b[1].startswith("Routing report:") and "routing 'paper'" in b[1])
    assert report("README.md") == report("docs/walkthrough.md")


@pytest.mark.parametrize("shown, printed, ok", [
    ("a 0.0752 b", "a 0.0753 b", True), ("a 0.0752 b", "a 0.0754 b", False),
    ("x  0", "x  0.001", False), ("1.2e-15", "1.3e-15", True), ("(1, 8, 6)", "(1, 9, 6)", False),
    ("  0.58   0.416", " 0.581  0.416", True), ("True", "False", False)])
def test_the_output_rule(shown, printed, ok):
    assert same_output(shown, printed)[0] is ok
