"""Run every C unit test registered with meson, in the normal build and
again in the ASan+UBSan build, each as its own pytest case."""
import json
import os
import subprocess

import pytest

from conftest import BUILD

BUILDS = {"": BUILD, "asan:": BUILD / "asan"}


def meson_tests():
    cases = []
    for prefix, build in BUILDS.items():
        out = subprocess.run(["meson", "introspect", "--tests", str(build)],
                             check=True, capture_output=True, text=True).stdout
        for t in json.loads(out):
            cases.append(pytest.param(t, id=prefix + t["name"]))
    return cases


@pytest.mark.parametrize("test", meson_tests())
def test_c_unit(test):
    env = dict(test.get("env") or {})
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    env.setdefault("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")
    proc = subprocess.run(test["cmd"], cwd=test.get("workdir"), env={**os.environ, **env},
                          capture_output=True, text=True, timeout=test.get("timeout") or 60)
    assert proc.returncode == 0, f"{test['name']} failed:\n{proc.stdout}\n{proc.stderr}"
