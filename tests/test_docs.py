"""docs/security.md is a contract: every cell of its process table names
the test that checks it, and every test the docs name exists.  No VM,
no daemon: this reads the docs and the test sources."""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

# `test_jail.py::test_probe_in_qemus_namespaces`, `::test_x` (same file as
# the reference before it), a bare `test_x` (a test function somewhere in
# tests/ or a unit test), `src/vmm/test_cgroup.c`, `fuzz/fuzz_vsock.c`.
REF = re.compile(r"`((?:tests/)?test_\w+\.py)?(::)?(test_\w+)`"
                 r"|`((?:src|fuzz|guest)/[\w/.-]+\.c)`"
                 r"|`((?:tests/)?test_\w+\.py)`")


def python_tests():
    """{file name: set of test function names} for tests/*.py, and the
    unit tests' functions under src/ (by their file's path)."""
    out = {}
    for f in (ROOT / "tests").glob("test_*.py"):
        out[f.name] = set(re.findall(r"^def (test_\w+)\(", f.read_text(), re.M))
    for f in [*(ROOT / "src").rglob("test_*.c"), *(ROOT / "guest").rglob("test_*.c")]:
        out[str(f.relative_to(ROOT))] = set(
            re.findall(r"^static void (test_\w+)\(", f.read_text(), re.M))
    return out


def refs(text, tests, last_file=None):
    """The references in text, each checked; a list of problems and the
    count of references found."""
    problems, count = [], 0
    for m in REF.finditer(text):
        pyfile, sep, name, cfile, bare_file = m.groups()
        count += 1
        if cfile:
            if not (ROOT / cfile).is_file():
                problems.append(f"{cfile}: no such file")
            continue
        if bare_file:
            if pathlib.Path(bare_file).name not in tests:
                problems.append(f"{bare_file}: no such test file")
            continue
        if pyfile:
            last_file = pathlib.Path(pyfile).name
            if last_file not in tests:
                problems.append(f"{pyfile}: no such test file")
            elif name not in tests[last_file]:
                problems.append(f"{pyfile}::{name}: no such test")
        elif sep:
            if not last_file or name not in tests.get(last_file, ()):
                problems.append(f"::{name}: no such test in {last_file}")
        elif not any(name in names for names in tests.values()):
            problems.append(f"{name}: no such test in tests/")
    return problems, count


def process_table():
    text = (DOCS / "security.md").read_text()
    section = text.split("\n## Processes\n", 1)[1].split("\n#", 1)[0]
    rows = [l for l in section.splitlines() if l.startswith("|")]
    header = [c.strip() for c in rows[0].strip("|").split("|")]
    assert set(rows[1].replace("|", "").strip()) <= set("- "), rows[1]
    return header, [[c.strip() for c in r.strip().strip("|").split("|")] for r in rows[2:]]


def test_every_cell_of_the_process_table_names_its_test():
    tests = python_tests()
    header, rows = process_table()
    assert len(rows) >= 8, rows
    missing, problems = [], []
    for row in rows:
        assert len(row) == len(header), row
        for col, cell in zip(header[1:], row[1:]):
            p, n = refs(cell, tests)
            problems += [f"{row[0]} / {col}: {x}" for x in p]
            if n == 0:
                missing.append(f"{row[0]} / {col}")
    assert not missing, "cells naming no test:\n" + "\n".join(missing)
    assert not problems, "\n".join(problems)


def test_every_test_the_docs_name_exists():
    tests = python_tests()
    problems = []
    for doc in sorted(DOCS.glob("*.md")) + [ROOT / "README.md"]:
        for para in doc.read_text().split("\n\n"):
            p, _ = refs(para, tests)
            problems += [f"{doc.relative_to(ROOT)}: {x}" for x in p]
    assert not problems, "\n".join(problems)


def test_the_checker_catches_what_it_should():
    """The checks above can fail: a made-up test, file or a cell without
    any reference is reported."""
    tests = {"test_a.py": {"test_x"}}
    assert refs("`test_a.py::test_x` and `::test_x`", tests) == ([], 2)
    assert refs("`test_a.py::test_y`", tests)[0] == ["test_a.py::test_y: no such test"]
    assert refs("`test_b.py::test_x`", tests)[0] == ["test_b.py: no such test file"]
    assert refs("`test_nowhere`", tests)[0] == ["test_nowhere: no such test in tests/"]
    assert refs("`src/vmm/test_nothing_here.c`", tests)[0] == \
        ["src/vmm/test_nothing_here.c: no such file"]
    assert refs("a cell with `code` but no test", tests) == ([], 0)
