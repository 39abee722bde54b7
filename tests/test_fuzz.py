"""The fuzz smoke of make check (issue 15, item 4): every fuzz/fuzz_*.c is
built and run for FUZZ_SMOKE_SECONDS (default 20) from its seed corpus by
scripts/fuzz.sh --smoke; any crash, leak or timeout fails.  A target that
crashes on purpose shows that a finding does fail the run."""
import os
import pathlib
import re
import subprocess

import pytest

from conftest import BUILD, ROOT

OUT = BUILD / "fuzz-smoke"
SECONDS = os.environ.get("FUZZ_SMOKE_SECONDS", "20")
TARGETS = sorted(p.stem[len("fuzz_"):] for p in (ROOT / "fuzz").glob("fuzz_*.c"))


def smoke(*targets, env=None):
    return subprocess.run([str(ROOT / "scripts" / "fuzz.sh"), "--smoke", str(OUT), *targets],
                          env={**os.environ, "FUZZ_SECONDS": SECONDS, **(env or {})},
                          capture_output=True, text=True, timeout=900)


def test_every_target_is_smoked():
    assert len(TARGETS) >= 4, TARGETS
    for t in TARGETS:
        assert (ROOT / "fuzz" / "corpus" / t).is_dir(), f"fuzz/corpus/{t}: no seeds"


@pytest.mark.parametrize("target", TARGETS)
def test_smoke(target):
    r = smoke(target)
    assert r.returncode == 0, r.stdout + r.stderr
    line = [l for l in r.stdout.splitlines() if l.strip().startswith(target + " ")]
    assert line, r.stdout
    execs = int(re.search(r"(\d+) execs", line[0]).group(1))
    assert execs > 0 and line[0].rstrip().endswith("crashes 0  ok"), line[0]


def test_a_crash_fails_the_smoke(tmp_path):
    fuzz = tmp_path / "fuzz"
    (fuzz / "corpus" / "boom").mkdir(parents=True)
    (fuzz / "corpus" / "boom" / "seed").write_bytes(b"boom")
    (fuzz / "fuzz_boom.c").write_text(
        "/* A target that crashes on its seed. */\n"
        "#include <stddef.h>\n#include <stdint.h>\n#include <string.h>\n"
        "int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);\n"
        "int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)\n"
        "{\n\tif (n >= 4 && !memcmp(d, \"boom\", 4))\n\t\t__builtin_trap();\n"
        "\treturn 0;\n}\n")
    try:
        r = smoke(env={"FUZZ_DIR": str(fuzz), "FUZZ_SECONDS": "5"})
        assert r.returncode == 1, r.stdout + r.stderr
        assert re.search(r"boom .* crashes 1 +FAILED", r.stdout), r.stdout
        assert list((OUT / "crashes").glob("boom-*"))
    finally:
        for p in (OUT / "crashes").glob("boom-*"):
            p.unlink()
        # The next smoke regenerates the build file for the real targets.
        (OUT / "build.ninja").unlink(missing_ok=True)
