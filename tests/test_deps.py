"""scripts/install-deps.sh installs every program the build, the scripts
and the tests run (issue 15, item 3).

The programs are found by reading the sources: in shell scripts and
Makefile recipes the words in command position (and the arguments of
wrappers such as `run LOG CMD`, `nice`, `command -v`), in Python the
first element of a list passed to a call and every absolute path to an
executable.  Each is mapped to its Debian package with `dpkg -S` on this
machine; the package must be in the script's list, or be installed by
one in the list (its Depends, followed), or be part of every Debian
system (Essential or Priority required).  A program that is not
installed here fails the test too: it could not have been checked."""
import ast
import functools
import os
import pathlib
import re
import shlex
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent

SHELL_FILES = ["scripts/*.sh", "guest/build.sh", "guest/kernel/build.sh",
               "guest/scripts/*.sh", ".ci/run", "debian/rules", "Makefile"]
PYTHON_FILES = ["tests/*.py", "tests/helpers/*.py", "bench/*.py", "fuzz/*.py"]

# Shell words after which the next word is a command.
KEYWORDS = {"if", "then", "else", "elif", "do", "while", "until", "!", "time", "{"}
SEPARATORS = {";", "&", "|", "&&", "||", "(", ")", "$(", "`", "{", "}"}
# Programs (or variables standing for one) that run the command after them.
WRAPPERS = {"exec", "command", "sudo", "$sudo", "nice", "env", "xargs", "timeout",
            "setsid", "fakeroot"}
# Functions of ours whose first argument is not the command (`run LOG CMD`).
SKIP_ONE = {"run"}
# Options of a wrapper that take a value.
OPTION_ARG = {"nice": {"-n"}, "xargs": {"-P", "-n", "-I"}}


def files(patterns):
    for pat in patterns:
        yield from sorted(p for p in ROOT.glob(pat) if p.is_file())


def shell_builtins():
    out = subprocess.run(["bash", "-c", "compgen -b; compgen -k"],
                         capture_output=True, text=True, check=True).stdout
    return set(out.split())


def logical_lines(text, makefile):
    """Lines of shell (recipe lines only for a Makefile), continuations
    joined, here-document bodies and multi-line array literals dropped."""
    lines, heredoc, array, acc = [], None, False, ""
    for raw in text.splitlines():
        if heredoc:
            if raw.strip() == heredoc:
                heredoc = None
            continue
        if array:               # the words of `name=(` ... `)`: data
            array = raw.strip() != ")"
            continue
        if re.fullmatch(r"\s*\w+=\(\s*", raw):
            array = True
            continue
        if makefile:
            m = re.match(r"^\w+\s*[?:]?=\s*(.*)", raw)
            if m:               # PYTEST ?= /usr/bin/python3 -m pytest
                raw = "\t" + m.group(1)
            if not raw.startswith("\t"):
                continue
            raw = raw[1:].replace("$(MAKE)", "make").replace("$$", "$")
            raw = re.sub(r"\$\((\w+)\)", r"$\1", raw)
        acc += raw
        if acc.endswith("\\"):
            acc = acc[:-1] + " "
            continue
        m = re.search(r"<<-?\s*['\"]?(\w+)['\"]?", acc)
        if m:
            heredoc = m.group(1)
        lines.append(acc)
        acc = ""
    return lines


def shell_words(line):
    lex = shlex.shlex(line, posix=True, punctuation_chars=";&|()<>`")
    lex.whitespace_split = True
    lex.commenters = "#"
    try:
        return list(lex)
    except ValueError:  # an unbalanced quote in a line we cannot parse
        return line.split()


def shell_programs(path):
    found = set()
    for line in logical_lines(path.read_text(), path.name == "Makefile"):
        # Inside words: "$(gcc -print-multiarch)", cc=${CC_FUZZ:-clang}.
        found.update(re.findall(r"(?:\$\(|`)\s*([\w./+-]+)", line))
        found.update(re.findall(r"\$\{\w+:-([\w./+-]+)\}", line))
        command_next, skip, loop = True, 0, None
        words = shell_words(line)
        for i, w in enumerate(words):
            prev = words[i - 1] if i else ""
            # `for VAR in WORDS; do`: every listed word may be a program
            # (guest/build.sh checks its tools with `command -v`).
            if w == "for":
                loop = "var"
                continue
            if loop == "var":
                loop = "in"
                continue
            if loop == "in":
                loop = "list" if w == "in" else None
                continue
            if loop == "list":
                if w in SEPARATORS or w == "do":
                    loop, command_next = None, True
                else:
                    found.add(w)
                continue
            if w in SEPARATORS or w in KEYWORDS or w.endswith("$(") or w == "$":
                command_next = True
                continue
            if not command_next:
                continue
            if skip:
                skip -= 1
                continue
            if re.match(r"^\w+=", w):   # VAR=value before the command
                continue
            if w in OPTION_ARG.get(prev, ()):
                skip = 1
                continue
            if w.startswith("-"):
                continue
            found.add(w)
            command_next = w in WRAPPERS or w in SKIP_ONE
            if w in SKIP_ONE:
                skip = 1
    return found


def python_programs(path):
    tree = ast.parse(path.read_text(), str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and \
                isinstance(node.args[0], (ast.List, ast.Tuple)) and node.args[0].elts:
            first = node.args[0].elts[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.add(first.value)
        # QEMU = "qemu-system-x86_64"; shutil.which("valgrind")
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and \
                isinstance(node.value.value, str) and \
                any(isinstance(t, ast.Name) and t.id.isupper() for t in node.targets):
            found.add(node.value.value)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr == "which" and node.args and \
                isinstance(node.args[0], ast.Constant):
            found.add(node.args[0].value)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                re.fullmatch(r"/(usr/)?(s?bin|lib|libexec)/[\w./+-]+", node.value):
            found.add(node.value)
    return found


def resolve(word, builtins):
    """The executable a word names, or None when it is no program."""
    if "$" in word or word in builtins or not re.fullmatch(r"[\w./+-]+", word):
        return None
    if word.startswith("/"):
        return word if os.path.isfile(word) and os.access(word, os.X_OK) else None
    if "/" in word:          # relative: one of ours (scripts/demo.sh, ...)
        return None
    return shutil.which(word)


@functools.lru_cache(maxsize=None)
def owner(path):
    """The installed package that ships path (merged-/usr aware)."""
    real = os.path.realpath(path)
    candidates = [path, real]
    for p in list(candidates):
        if p.startswith("/usr/"):
            candidates.append(p[4:])
        else:
            candidates.append("/usr" + p)
    for p in candidates:
        r = subprocess.run(["dpkg", "-S", p], capture_output=True, text=True)
        # "pkg:arch, other: /path" -> first package; a diverted path
        # (/bin/sh, /usr/bin/perf) has "diversion by PKG ..." lines too.
        lines = [ln for ln in r.stdout.splitlines() if not ln.startswith("diversion by ")]
        if r.returncode == 0 and lines:
            return lines[0].split(":")[0].split(",")[0].strip()
    return None


@functools.lru_cache(maxsize=None)
def installed_packages():
    out = subprocess.run(
        ["dpkg-query", "-W", "-f",
         "${Package}\t${db:Status-Abbrev}\t${Essential}\t${Priority}\t"
         "${Pre-Depends}\t${Depends}\t${Provides}\n"],
        capture_output=True, text=True, check=True).stdout
    pkgs = {}
    for line in out.splitlines():
        name, status, essential, priority, pre, dep, provides = line.split("\t")
        if not status.startswith("ii"):
            continue
        pkgs[name] = {"base": essential == "yes" or priority == "required",
                      "depends": ", ".join(d for d in (pre, dep) if d),
                      "provides": [p.split()[0] for p in provides.split(",") if p.strip()]}
    return pkgs


def closure(listed, pkgs):
    """listed plus everything their Depends pull in (first alternative;
    virtual packages through what provides them here)."""
    providers = {}
    for name, p in pkgs.items():
        for v in p["provides"]:
            providers.setdefault(v, []).append(name)
    seen, todo = set(), list(listed)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for group in pkgs.get(name, {}).get("depends", "").split(","):
            if not group.strip():
                continue
            first = group.split("|")[0].split()[0].split(":")[0]
            if first in pkgs:
                todo.append(first)
            else:
                todo += providers.get(first, [])
    return seen


def listed_packages():
    r = subprocess.run([str(ROOT / "scripts" / "install-deps.sh"), "--list"],
                       capture_output=True, text=True, check=True)
    return r.stdout.split()


@functools.lru_cache(maxsize=None)
def programs():
    """{program path: [source files that run it]}"""
    builtins = shell_builtins()
    used = {}
    for path in files(SHELL_FILES):
        for w in shell_programs(path):
            exe = resolve(w, builtins)
            if exe:
                used.setdefault(exe, set()).add(str(path.relative_to(ROOT)))
    for path in files(PYTHON_FILES):
        for w in python_programs(path):
            exe = resolve(w, builtins)
            if exe:
                used.setdefault(exe, set()).add(str(path.relative_to(ROOT)))
    return used


def test_list_is_installable_names():
    listed = listed_packages()
    assert len(listed) == len(set(listed)), "a package is listed twice"
    pkgs = installed_packages()
    missing = [p for p in listed if p not in pkgs]
    assert not missing, f"listed but not installed here (make deps): {missing}"


def problems(listed):
    """What the scan finds uncovered by the packages listed."""
    pkgs = installed_packages()
    covered = closure(listed, pkgs)
    out = []
    for exe, where in sorted(programs().items()):
        pkg = owner(exe)
        if pkg is None:
            out.append(f"{exe} (run by {', '.join(sorted(where))}): no package ships it")
        elif pkg not in covered and not pkgs.get(pkg, {}).get("base"):
            out.append(f"{exe} (run by {', '.join(sorted(where))}): package {pkg} "
                       "is not in scripts/install-deps.sh")
    return out


def test_the_scan_sees_the_programs():
    """Programs we know the scripts and tests run: if the scan misses
    one, it reads nothing and the test below proves nothing."""
    used = {os.path.basename(p) for p in programs()}
    for known in ("jq", "tmux", "meson", "mke2fs", "sfdisk", "qemu-system-x86_64",
                  "virtiofsd", "clang", "valgrind", "ip", "musl-gcc", "dpkg-buildpackage",
                  "lintian"):
        assert known in used, f"the scan did not find {known}: {sorted(used)}"


def test_every_program_comes_from_a_listed_package():
    found = problems(listed_packages())
    assert not found, "\n".join(found)


def test_a_missing_package_is_reported():
    """Force the failing case: without jq in the list, the check names
    jq and the script that runs it."""
    found = problems([p for p in listed_packages() if p != "jq"])
    assert any("package jq is not in" in f and "scripts/demo.sh" in f for f in found), found
