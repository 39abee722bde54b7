"""vmhostd and vm built with AddressSanitizer and UndefinedBehaviorSanitizer
(`make asan`: build/asan/) through a subset of the daemon's integration
scenarios (issue 6, item 6): the booted-VM checks, start refused twice,
stop, kill -9 of QEMU and a stalled client from test_daemon.py, and the
hostile-client cases of test_protocol.py that need no guest (they cover
test_daemon's bad requests, whose truncated case waits out the 60 s idle
timeout).  Memory bounds are not checked here: ASan's quarantine keeps
freed memory resident.

LeakSanitizer runs at the daemon's exit (detect_leaks=1); any report
aborts it (abort_on_error=1).  The daemon must exit 0 on SIGTERM with no
sanitizer report in its stderr, and so must every `vm` it ran."""
import os
import pathlib

import pytest

import helpers.daemon as hd
from helpers.daemon import Daemon

# The scenarios, reused as they are; they get this module's daemon.
from test_daemon import app, home  # noqa: F401 (fixtures)
from test_daemon import (  # noqa: F401
    test_start_reports_running, test_serial_log_has_kernel_and_init,
    test_console_answers, test_two_viewers_see_output, test_share_both_ways,
    test_info_describes_devices, test_start_twice_is_refused,
    test_stop_leaves_nothing, test_kill9_is_failed,
    test_stalled_client_does_not_block)
from test_protocol import (  # noqa: F401
    test_request_over_the_cap_is_refused_and_closed,
    test_bad_request_gets_an_error, test_truncated_request_then_close,
    test_pipelined_requests_answered_in_order,
    test_stallers_do_not_delay_others, test_non_reader_is_paused_not_buffered)

ASAN = pathlib.Path(os.environ.get("VMHOST_ASAN_BUILD", hd.BUILD / "asan"))
REPORTS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
           "SUMMARY: UndefinedBehaviorSanitizer", "SUMMARY: AddressSanitizer")


def sanitizer_reports(text):
    return [l for l in text.splitlines() if any(r in l for r in REPORTS)]


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, vm_bin):
    if not (ASAN / "vmhostd").exists():
        pytest.fail(f"{ASAN / 'vmhostd'} missing: run make asan")
    mp = pytest.MonkeyPatch()
    mp.setattr(hd, "VMHOSTD", ASAN / "vmhostd")
    mp.setattr(hd, "VM", ASAN / "vm")
    mp.setenv("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1:halt_on_error=1")
    mp.setenv("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    d = Daemon(tmp_path_factory.mktemp("asan"))
    d.sanitized = True
    real_vm = d.vm

    def vm(*args, **kw):
        # Every CLI run is sanitized too: no report, no abort.
        r = real_vm(*args, **kw)
        assert not sanitizer_reports(r.stderr), r.stderr
        assert r.returncode >= 0, f"vm {args} died by signal {-r.returncode}: {r.stderr}"
        return r

    d.vm = vm
    d.start()
    assert os.readlink(f"/proc/{d.proc.pid}/exe") == str(ASAN / "vmhostd")
    try:
        yield d
        d.stop()
        assert d.proc.returncode == 0, f"vmhostd exited {d.proc.returncode}:\n{d.stderr()}"
        reports = sanitizer_reports((d.tmp / "vmhostd.stderr").read_text(errors="replace"))
        assert not reports, (d.tmp / "vmhostd.stderr").read_text(errors="replace")
    finally:
        if d.proc.poll() is None:
            d.stop()
        mp.undo()
