"""Shared pytest fixtures: where the build outputs are.

Component-specific helpers live in tests/helpers/*.py; keep this file small
so that parallel work on different components does not collide here.
"""
import os
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUILD = pathlib.Path(os.environ.get("VMHOST_BUILD", ROOT / "build"))
GUEST = BUILD / "guest"

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def build_dir():
    return BUILD


@pytest.fixture(scope="session")
def vm_bin():
    path = BUILD / "vm"
    assert path.exists(), f"{path} missing: run make"
    return path


@pytest.fixture(scope="session")
def vmhostd_bin():
    path = BUILD / "vmhostd"
    assert path.exists(), f"{path} missing: run make"
    return path


@pytest.fixture(scope="session")
def guest_dir():
    for name in ("vmlinux", "appvm.img", "netvm.img", "vm-netconf"):
        assert (GUEST / name).exists(), f"{GUEST / name} missing: run make guest"
    return GUEST
