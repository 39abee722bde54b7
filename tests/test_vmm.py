"""The QEMU backend end to end, without the daemon: build/src/vmm/vmm-try
boots a real VM under QEMU (TCG here) with a virtio-fs share, runs a
command on the virtio-console shell, powers it down over QMP, and leaves
nothing behind."""
import os
import pathlib

import pytest

from helpers import qemu, vmdirs

KERNEL = qemu.GUEST / "vmlinux"


@pytest.fixture(scope="module")
def kernel():
    if not qemu.wait_for(KERNEL, 600):
        pytest.fail(f"{KERNEL} missing: guest/kernel/build.sh")
    assert qemu.VMM_TRY.exists(), "vmm-try missing: run make"
    return KERNEL


def boot(tmp_path, kernel, image=None, console_cmd=None, expect=None,
         timeout=30, extra=()):
    root = vmdirs.ConfigRoot(tmp_path)
    share = root.data_dir("docs")
    (share / "hello.txt").write_text("hi from host\n")
    qemu.guest_vm(root, "app", kernel, image=image, shares={"docs": share})
    args = ["--config-root", root.path, "--timeout", timeout]
    if console_cmd:
        args += ["--console-cmd", console_cmd, "--console-expect", expect,
                 "--console-out", tmp_path / "console.txt"]
    run = qemu.VmmTry(args + list(extra) + ["app"], tmp_path / "serial.txt")
    return root, share, run


def check_gone(run):
    """No QEMU or virtiofsd of this run remains, nor its socket dir."""
    err = run.stderr()
    pids = qemu.reported_pids(err, "qemu") + qemu.reported_pids(err, "virtiofsd")
    assert pids, err
    for pid in pids:
        assert not qemu.pid_alive(pid), f"pid {pid} still alive"


def test_boot_share_console_powerdown(tmp_path, kernel):
    cmd = ("cat /run/virtiofs/docs/hello.txt; "
           "echo written-by-guest > /run/virtiofs/docs/out.txt; "
           "echo DONE-$((6*7))")
    root, share, run = boot(tmp_path, kernel, console_cmd=cmd,
                            expect="DONE-42")
    rc = run.wait(60)
    err = run.stderr()
    assert rc == 0, err[-3000:]
    assert qemu.READY in run.stdout()
    assert "vmm-try: status running" in err
    console = (tmp_path / "console.txt").read_text(errors="replace")
    assert "hi from host" in console and "DONE-42" in console
    assert (share / "out.txt").read_text() == "written-by-guest\n"
    assert "vmm-try: qemu exited (status 0)" in err  # ACPI powerdown
    check_gone(run)


def test_fds_and_sandbox(tmp_path, kernel):
    # The guest sleeps on the console so the processes can be inspected.
    root, share, run = boot(tmp_path, kernel,
                            console_cmd="sleep 4; echo DONE-$((6*7))",
                            expect="DONE-42")
    try:
        import time
        end = time.monotonic() + 30
        while qemu.READY not in run.stdout() and time.monotonic() < end:
            assert run.proc.poll() is None, run.stderr()
            time.sleep(0.2)
        err = run.stderr()
        [qpid] = qemu.reported_pids(err, "qemu")
        [vpid] = qemu.reported_pids(err, "virtiofsd")
        if os.geteuid() == 0:
            # Dropped as vmhostd does: its own uid, no capabilities.
            assert "vmm-try: qemu runs as uid and gid 1965535" in err
            st = dict(l.split(":\t", 1) for l in
                      pathlib.Path(f"/proc/{qpid}/status").read_text().splitlines())
            assert st["Uid"].split() == ["1965535"] * 4
            assert int(st["CapEff"], 16) == 0 and int(st["CapBnd"], 16) == 0
        vm = root.path / "app"
        allowed = {"/dev/null", str(kernel), str(vm / "rootfs.ext4"),
                   os.readlink(f"/proc/{run.proc.pid}/fd/2")}
        qfds = {fd: os.readlink(f"/proc/{qpid}/fd/{fd}")
                for fd in os.listdir(f"/proc/{qpid}/fd")}
        for fd, target in qfds.items():
            if target.startswith(("anon_inode:", "/memfd:", "socket:")):
                continue
            assert target in allowed, f"qemu fd {fd} -> {target}"
        # qmp, serial, console (each listening, and its one connection),
        # virtio-fs, plus vhost-user's own channel.
        socks = [t for t in qfds.values() if t.startswith("socket:")]
        assert 7 <= len(socks) <= 8, qfds
        assert not any(t.startswith("pipe:") for t in qfds.values())
        # virtiofsd: its vhost-user socket and nothing else of ours.
        vfds = {os.readlink(f"/proc/{vpid}/fd/{fd}")
                for fd in os.listdir(f"/proc/{vpid}/fd")}
        assert {t for t in vfds if not t.startswith(("socket:", "anon_inode:"))} \
            <= allowed, vfds
        # Sandboxed: its own mount namespace, and its worker (pid 1 of
        # a namespace of its own) rooted in the share.
        assert os.readlink(f"/proc/{vpid}/ns/mnt") != os.readlink("/proc/self/ns/mnt")
        worker = [int(p) for p in os.listdir("/proc") if p.isdigit() and
                  open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1] == str(vpid)]
        assert len(worker) == 1, worker
        assert "hello.txt" in os.listdir(f"/proc/{worker[0]}/root")
        assert rc_ok(run)
    finally:
        run.kill()
    check_gone(run)


def rc_ok(run):
    rc = run.wait(60)
    assert rc == 0, run.stderr()[-3000:]
    return True


def test_kit_image(tmp_path, kernel):
    image = qemu.GUEST / "appvm.img"
    if not image.exists():
        pytest.skip("build/guest/appvm.img not built yet (make guest)")
    root, share, run = boot(tmp_path, kernel, image=image,
                            console_cmd="cat /run/virtiofs/docs/hello.txt; "
                                        "echo DONE-$((6*7))",
                            expect="DONE-42")
    rc = run.wait(60)
    assert rc == 0, run.stderr()[-3000:]
    console = (tmp_path / "console.txt").read_text(errors="replace")
    assert "hi from host" in console
    check_gone(run)


def test_bad_kernel_fails_cleanly(tmp_path, kernel):
    root = vmdirs.ConfigRoot(tmp_path)
    root.vm("bad", disks=("root",), memory="128M")  # fake ELF kernel
    run = qemu.VmmTry(["--config-root", root.path, "--timeout", 15, "bad"],
                      tmp_path / "serial.txt")
    rc = run.wait(30)
    err = run.stderr()
    assert rc != 0
    assert "vmm-try: ok" not in err
    check_gone(run)


def test_hotplug_ports_boot(tmp_path, kernel):
    """The most hot-plug ports the backend offers still boot."""
    root, share, run = boot(tmp_path, kernel, extra=["--hotplug", 56])
    rc = run.wait(60)
    assert rc == 0, run.stderr()[-3000:]
    check_gone(run)


def test_reconnect(tmp_path, kernel):
    """launch_reconnect, as a daemon restarted under a running VM uses it:
    after QMP, serial and console hung up, QEMU takes a new client on each
    (QMP greets again, both consoles answer), and what the guest wrote
    while nobody was connected is gone: QEMU keeps none of it."""
    root, share, run = boot(tmp_path, kernel, extra=["--reconnect"])
    rc = run.wait(120)
    err = run.stderr()
    assert rc == 0, err[-3000:]
    assert "vmm-try: reconnected: QMP greeted again" in err
    assert ("vmm-try: reconnected: console and serial answer; written while "
            "away: serial dropped, console dropped") in err
    check_gone(run)
