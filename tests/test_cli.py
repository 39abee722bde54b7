"""The `vm` verbs that talk to vmhostd: exit codes, output formats,
console piping, log, aliases."""
import json
import os
import subprocess

import pytest

from helpers.daemon import READY, VM, Daemon


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, vm_bin, vmhostd_bin):
    with Daemon.serving(tmp_path_factory.mktemp("cli")) as d:
        yield d


@pytest.fixture(scope="module")
def running(daemon):
    vm = daemon.guest("web")
    vm.flag("wayland")
    r = daemon.vm("start", "web")
    assert r.returncode == 0, r.stderr + daemon.stderr()
    assert r.stdout.startswith("web: running (pid ")
    daemon.wait_serial("web", READY)
    yield "web"
    daemon.vm("stop", "--force", "web")


def test_no_daemon_is_exit_3(tmp_path):
    r = subprocess.run([str(VM), "list", "--state-dir", str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 3 and "no daemon at" in r.stderr


@pytest.mark.parametrize("args", [["list", "extra"], ["start"], ["stop", "a", "b"],
                                  ["stop", "--timeout", "soon", "a"], ["log"],
                                  ["info", "--bogus", "a"], ["console"]])
def test_usage_is_exit_2(args):
    r = subprocess.run([str(VM), *args], capture_output=True, text=True)
    assert r.returncode == 2 and ("usage: vm" in r.stderr or "--timeout soon" in r.stderr)


def test_list_table_and_json(daemon, running):
    daemon.root.vm("idle")
    r = daemon.vm("list")
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert lines[0].split()[:5] == ["NAME", "STATE", "PID", "SINCE", "REASON"]
    rows = {l.split()[0]: l.split() for l in lines[1:]}
    assert rows["web"][1] == "running" and rows["idle"][1] == "stopped"
    assert "\033[" not in r.stdout  # not a terminal: no colour
    vms = {v["name"]: v for v in json.loads(daemon.vm("list", "--json").stdout)}
    assert set(vms["idle"]) >= {"name", "state", "pid", "since", "reason"}
    assert vms["idle"]["pid"] is None and isinstance(vms["web"]["pid"], int)


def test_every_verb_takes_help():
    for verb in ("check", "console", "info", "list", "log", "start", "stop"):
        r = subprocess.run([str(VM), verb, "--help"], capture_output=True, text=True)
        assert r.returncode == 0 and r.stdout.startswith(f"usage: vm {verb}"), (verb, r)
        assert r.stderr == ""


def test_lsvm_alias(daemon, running, tmp_path):
    (tmp_path / "lsvm").symlink_to(VM)
    r = subprocess.run([str(tmp_path / "lsvm")], env=daemon.env(),
                       capture_output=True, text=True)
    assert r.returncode == 0 and "web" in r.stdout


def test_console_pipes_without_tty(daemon, running):
    r = daemon.vm("console", "web", input="echo piped-$((5*5))\n")
    assert r.returncode == 0, r.stderr
    assert "Connected to web; detach with Ctrl-]" in r.stderr
    assert "piped-25" in r.stdout


def test_log_prints_serial(daemon, running):
    r = daemon.vm("log", "web")
    assert r.returncode == 0 and READY in r.stdout and "Linux version" in r.stdout


def test_info_reports_wayland(daemon, running):
    r = daemon.vm("info", "web")
    assert r.returncode == 0
    assert "state:     running" in r.stdout and "accel:     tcg" in r.stdout
    # This daemon has no --wayland-display (tests/test_wayland.py has).
    why = "wayland: vmhostd has no compositor (it runs without --wayland-display)"
    assert why in r.stdout
    assert why in daemon.serial_log("web")
    j = json.loads(daemon.vm("info", "--json", "web").stdout)
    assert j["notes"] and j["config"]["wayland"] is True


def test_stop_and_errors(daemon, running):
    r = daemon.vm("stop", "--force", "web")
    assert r.returncode == 0 and r.stdout.startswith("web: stopped")
    r = daemon.vm("console", "web")
    assert r.returncode == 1 and "not running" in r.stderr
    r = daemon.vm("log", "nosuch")
    assert r.returncode == 1 and "unknown VM nosuch" in r.stderr
    daemon.assert_clean("web")
