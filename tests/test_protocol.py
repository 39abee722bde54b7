"""The control protocol against hostile clients (issue 6, item 2), on a
real vmhostd: peer credentials, the 64 KiB request cap, malformed,
truncated and mistyped requests, and clients that stall or never read,
which must not delay anyone else nor VM supervision.  (The basic bad
requests of test_daemon.py are not repeated.)"""
import json
import os
import select
import socket
import subprocess
import sys
import time

import pytest

from helpers.daemon import READY, VM, Daemon, wait_until

CAP = 64 * 1024  # CONTROL_REQUEST_MAX: a request line, newline included


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, vm_bin, vmhostd_bin):
    with Daemon.serving(tmp_path_factory.mktemp("protocol")) as d:
        d.root.vm("app")  # fake kernel: never started here
        yield d


def connect(d):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # Blocking: a full listen backlog makes a non-blocking connect fail.
    s.connect(str(d.control))
    s.settimeout(20)
    return s


def replies(s, count):
    """count reply lines from s (fewer if it closes first)."""
    buf = b""
    while buf.count(b"\n") < count:
        data = s.recv(1 << 20)
        if not data:
            break
        buf += data
    return [json.loads(l) for l in buf.split(b"\n")[:count] if l]


def closed(s, timeout=10):
    """Whether the daemon closes s (after anything it still sends)."""
    s.settimeout(timeout)
    try:
        while s.recv(65536):
            pass
        return True
    except (socket.timeout, ConnectionResetError):
        return False


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def assert_rss_grew_less(d, before, kib):
    """Under ASan (test_asan.py) freed memory stays in quarantine."""
    if not getattr(d, "sanitized", False):
        assert rss_kib(d.engine_pid()) - before < kib


def timed_list(d):
    t = time.monotonic()
    r = d.request({"op": "list"}, timeout=10)
    assert r["ok"] is True
    return time.monotonic() - t


# --- peer credentials ---

CLIENT = r"""
import os, socket, sys
os.setgroups([]); os.setgid(65534); os.setuid(65534)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print("connect:", e.errno); sys.exit(0)
try:
    s.sendall(b'{"op":"list"}\n')
except OSError:
    pass
buf = b""
try:
    while True:
        d = s.recv(4096)
        if not d:
            break
        buf += d
except OSError as e:
    print("recv:", e.errno)
print("reply:", buf.decode().partition("\n")[0])
"""


def as_nobody(path):
    return subprocess.run([sys.executable, "-c", CLIENT, str(path)],
                          capture_output=True, text=True, timeout=20)


def test_other_uid_cannot_connect(daemon):
    """Neither a raw client nor the vm CLI run by another user (with that
    user's ids, groups and capabilities: none) gets in."""
    assert os.getuid() == 0, "tests run as root"
    p = as_nobody(daemon.control)
    assert p.stdout.strip() == "connect: 13", p.stdout + p.stderr  # EACCES

    def drop():
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
    r = subprocess.run([str(VM), "list"], env=daemon.env(), capture_output=True, text=True,
                       timeout=20, preexec_fn=drop)
    assert r.returncode == 3 and "Permission denied" in r.stderr, r.stdout + r.stderr


def test_other_uid_refused_by_credentials(daemon):
    """Even when the socket's mode lets it in (a mistake, or a shared
    state dir), the peer's uid is checked: refused with a reply, closed,
    nothing answered."""
    state_mode = daemon.state.stat().st_mode & 0o777
    sock_mode = daemon.control.stat().st_mode & 0o777
    os.chmod(daemon.state, 0o711)
    os.chmod(daemon.control, 0o666)
    try:
        p = as_nobody(daemon.control)
    finally:
        os.chmod(daemon.state, state_mode)
        os.chmod(daemon.control, sock_mode)
    out = p.stdout.strip()
    # The daemon closes with the request unread: the reply may be
    # followed by ECONNRESET ("recv: 104").
    line = [l for l in out.splitlines() if l.startswith("reply: ")]
    assert line, out + p.stderr
    rep = json.loads(line[0][len("reply: "):])
    assert rep == {"ok": False, "error": "permission denied: not root nor the daemon's user"}
    assert '"vms"' not in out
    assert daemon.request({"op": "list"})["ok"] is True


# --- size cap ---

def padded(size):
    """A valid list request line of exactly size bytes, newline included."""
    head = b'{"op":"list","pad":"'
    return head + b"x" * (size - len(head) - 3) + b'"}\n'


def test_request_at_the_cap_is_answered(daemon):
    line = padded(CAP)
    assert len(line) == CAP
    with connect(daemon) as s:
        s.sendall(line)
        assert replies(s, 1)[0]["ok"] is True


def test_request_over_the_cap_is_refused_and_closed(daemon):
    with connect(daemon) as s:
        try:
            s.sendall(padded(CAP + 1))
        except (BrokenPipeError, ConnectionResetError):
            pass
        rep = replies(s, 1)
        assert rep == [{"ok": False, "error": f"bad request: longer than {CAP} bytes"}]
        assert closed(s)


def test_endless_line_keeps_memory_bounded(daemon):
    before = rss_kib(daemon.engine_pid())
    sent = 0
    with connect(daemon) as s:
        chunk = b"y" * 65536
        try:
            while sent < 64 << 20:
                s.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        # Dropped at the cap, long before 64 MiB.
        assert sent < 16 << 20
    assert_rss_grew_less(daemon, before, 8 * 1024)
    assert timed_list(daemon) < 1


# --- malformed, truncated, mistyped ---

@pytest.mark.parametrize("raw,error", [
    (b'{"op":"list"}\x00junk\n', "bad request: "),
    (b'{"op":"li\\u0000st"}\n', "bad request: "),
    (b'{"op":"info","name":"app\\u0000x"}\n', "bad request: "),
    (b'{"op":"list","op":"start"}\n', "bad request: duplicate object key"),
    (b'\xff\xfe{"op":"list"}\n', "bad request: "),
    (b'{"op":"info","name":"\xc3"}\n', "bad request: "),
    (b"[" * 60000 + b"\n", "bad request: "),
    (b'"list"\n', "bad request: '[' or '{' expected"),
    (b"null\n", "bad request: '[' or '{' expected"),
    (b"[1, 2]\n", "bad request: not a JSON object"),
    (b'{"op":["list"]}\n', 'bad request: "op" (a string) is missing'),
    (b'{"op":"info","name":5}\n', 'bad request: "name" (a string) is missing'),
    (b'{"op":"info","name":""}\n', 'invalid VM name ""'),
    (b'{"op":"info","name":"a/b"}\n', 'invalid VM name "a/b"'),
    (b'{"op":"stop","name":"app","force":"yes"}\n', 'bad request: "force" is a boolean'),
    (b'{"op":"stop","name":"app","timeout":"3"}\n', '"timeout" an integer'),
    (b'{"op":"stop","name":"app","timeout":1.5}\n', '"timeout" an integer'),
    (b'{"op":"stop","name":"app","timeout":99999999999999999999}\n', "bad request: "),
    (b'{"op":"stop","name":"app","timeout":-1}\n', "timeout must be 0 to 3600 seconds"),
    (b'{"op":"log","name":"app","follow":1}\n', 'bad request: "follow" is a boolean'),
    (b'{"op":"' + b"x" * 1000 + b'"}\n', 'bad request: unknown op "' + "x" * 40 + '"'),
], ids=lambda v: repr(v[:30]) if isinstance(v, bytes) else "")
def test_bad_request_gets_an_error(daemon, raw, error):
    with connect(daemon) as s:
        s.sendall(raw + b'{"op":"list"}\n')
        bad, good = replies(s, 2)
    assert bad["ok"] is False and bad["error"].startswith("bad request: ") or \
        bad["error"].startswith("invalid VM name"), bad
    assert error in bad["error"], bad
    # The connection survives a bad line: the next request is answered.
    assert good["ok"] is True


def test_truncated_request_then_close(daemon):
    with connect(daemon) as s:
        s.sendall(b'{"op":"list"')
        s.shutdown(socket.SHUT_WR)
        assert replies(s, 1) == [{"ok": False, "error":
                                  "bad request: truncated (no newline before end of input)"}]
        assert closed(s)
    # Sent and gone without reading: nothing to answer, nothing breaks.
    for raw in (b'{"op":"li', b'{"op":"list"}\n', b'{"op":"info","name":"app"}\n' * 50):
        s = connect(daemon)
        s.sendall(raw)
        s.close()
    assert timed_list(daemon) < 1
    assert daemon.proc.poll() is None


def test_pipelined_requests_answered_in_order(daemon):
    with connect(daemon) as s:
        s.sendall(b'{"op":"list"}\n\n{"op":"fly"}\n{"op":"info","name":"app"}\n')
        a, b, c = replies(s, 3)
    assert a["ok"] is True and "vms" in a
    assert b == {"ok": False, "error": 'bad request: unknown op "fly"'}
    assert c["ok"] is True and c["vm"]["name"] == "app"


# --- stalled and non-reading clients ---

def test_stallers_do_not_delay_others(daemon):
    stallers = []
    try:
        for i in range(20):
            s = connect(daemon)
            s.sendall(b'{"op": "li')  # half a line, never finished, never read
            stallers.append(s)
        times = [timed_list(daemon) for _ in range(10)]
        assert max(times) < 1, times
        r = daemon.vm("list")
        assert r.returncode == 0 and "app" in r.stdout
    finally:
        for s in stallers:
            s.close()


def test_client_count_is_capped(daemon):
    """Past CONTROL_CLIENTS_MAX (256) connections a client is told so and
    closed, so the daemon keeps fds for its VMs; once some go, others are
    served again."""
    held = []
    try:
        for i in range(256):
            held.append(connect(daemon))
        # Let the daemon accept them all before the one too many.
        wait_until(lambda: len(os.listdir(f"/proc/{daemon.engine_pid()}/fd")) > 2 * 256, 10,
                   "256 clients accepted")
        with connect(daemon) as s:
            assert replies(s, 1) == [{"ok": False, "error":
                                      "too many clients connected; try again later"}]
            assert closed(s)
    finally:
        for s in held:
            s.close()
    wait_until(lambda: daemon.request({"op": "list"}).get("ok"), 10, "served again")


def test_non_reader_is_paused_not_buffered(daemon):
    """A client that sends thousands of requests and reads nothing is
    simply not read any more once 64 KiB of replies wait: the daemon's
    memory stays flat, others are answered, and when it finally reads it
    gets every reply.  (list: an info of a stopped VM gathers its
    directory in a child, too slow under ASan for 40000 of them.)"""
    n = 40000
    before = rss_kib(daemon.engine_pid())
    s = connect(daemon)
    s.setblocking(False)
    data = b'{"op":"list"}\n' * n
    sent = 0
    end = time.monotonic() + 5
    while sent < len(data) and time.monotonic() < end:
        try:
            sent += s.send(data[sent:])
        except BlockingIOError:
            time.sleep(0.05)
    # The kernel's buffers fill up: the daemon stopped reading.
    assert sent < len(data)
    assert timed_list(daemon) < 1
    assert_rss_grew_less(daemon, before, 4 * 1024)
    got, buf = 0, b""
    end = time.monotonic() + 60
    while got < n and time.monotonic() < end:
        r, w, _ = select.select([s], [s] if sent < len(data) else [], [], 1)
        if w:
            try:
                sent += s.send(data[sent:sent + 65536])
            except BlockingIOError:
                pass
        if r:
            chunk = s.recv(1 << 20)
            assert chunk, f"closed after {got} replies"
            buf += chunk
            got += chunk.count(b"\n")
    s.close()
    assert got == n
    assert all(json.loads(l)["ok"] for l in buf.split(b"\n")[:3])


def test_supervision_goes_on_under_stallers(daemon):
    """With 20 stallers and a non-reader connected, a VM starts, boots,
    is noticed when QEMU is killed, and list stays fast throughout."""
    daemon.guest("sup")
    clients = []
    try:
        for i in range(20):
            s = connect(daemon)
            s.sendall(b'{"op":"start","na')
            clients.append(s)
        s = connect(daemon)
        s.setblocking(False)
        try:
            while True:
                s.send(b'{"op":"list"}\n' * 1000)
        except BlockingIOError:
            pass
        clients.append(s)
        r = daemon.vm("start", "sup", timeout=60)
        assert r.returncode == 0, r.stderr + daemon.stderr()
        daemon.wait_serial("sup", READY)
        assert timed_list(daemon) < 1
        os.kill(daemon.record("sup")["pid"], 9)
        rec = daemon.wait_state("sup", ("failed", "stopped"), 30)
        assert rec["state"] == "failed"
        assert timed_list(daemon) < 1
    finally:
        for s in clients:
            s.close()
    wait_until(lambda: daemon.record("sup")["state"] == "failed", 10, "failed")
    daemon.assert_clean("sup")
