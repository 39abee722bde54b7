#!/usr/bin/env python3
"""Write the seed corpora in fuzz/corpus/ (checked in; rerun after
changing the input formats described in fuzz/fuzz_*.c)."""
import json
import pathlib
import struct

HERE = pathlib.Path(__file__).resolve().parent
ELF = b"\x7fELF\x02\x01\x01" + b"\0" * 9
FILE, DIR, LINK, FIFO, SPARSE = range(5)


def entry(kind, path, data=b""):
    path = path.encode()
    return bytes([kind, len(path)]) + path + struct.pack("<H", len(data)) + data


def tree(*entries):
    return b"".join(entry(*e) for e in entries)


def loader():
    vm = lambda n: [(FILE, f"c/{n}/vmlinux", ELF), (FILE, f"c/{n}/blk/root.img", b"\0" * 16)]
    return {
        "valid": tree(*vm("app")),
        "full": tree(*vm("app"), (FILE, "c/app/rootfs.ext4", b"x"),
                     (DIR, "home"), (LINK, "c/app/shared-dirs/home/dir", b"../../../../home"),
                     (FILE, "c/app/providers/net/net", b""), (FILE, "c/app/wayland", b""),
                     (FILE, "c/app/memory", b"512M\n"), (FILE, "c/app/cpus", b"2"),
                     (FILE, "c/app/cmdline", b"console=ttyS0 quiet\n"), (FILE, "c/app/uplink", b""),
                     *vm("net"), (FILE, "c/net/uplink", b"host-loopback\n")),
        "cycle": tree(*vm("a"), *vm("b"), (FILE, "c/a/providers/net/b", b""),
                      (FILE, "c/b/providers/net/a", b"")),
        "hostile": tree((FIFO, "c/f/vmlinux"), (FIFO, "c/f/blk/x.img"),
                        (LINK, "c/f/blk/loop.img", b"loop.img"),
                        (LINK, "c/f/shared-dirs/t/dir", b"../../../../.."),
                        (SPARSE, "c/f/rootfs.ext4", struct.pack("<Q", 1 << 40)),
                        (FILE, "c/bad\nname,x:y z/vmlinux", b"\x7fELF"),
                        (FILE, "c/f/memory", b"1\xffG")),
        "bzimage": tree((FILE, "c/k/vmlinux", b"\0" * 0x202 + b"HdrS"), (DIR, "c/k/blk")),
    }


def control():
    lines = [{"op": "list"}, {"op": "info", "name": "app"},
             {"op": "stop", "name": "app", "force": True, "timeout": 5},
             {"op": "log", "name": "app", "follow": True}, {"op": "console", "name": "a"},
             {"op": "start", "name": "../x"}, {"op": "stop", "name": "a", "timeout": -1}]
    out = {f"req{i}": b"\x10" + json.dumps(l).encode() + b"\n" for i, l in enumerate(lines)}
    out["pipeline"] = b"\x03" + b"".join(json.dumps(l).encode() + b"\n" for l in lines)
    out["bad"] = b"\x07{not json\n[1]\n\n{\"op\":7}\n{\"op\":\"list\",\"op\":\"x\"}\n{\"op\":\"li\0st\"}\n{\"op\""
    return out


def session():
    # Byte 0: write size - 1; byte 1: bit 0 reads replies, bit 1 half-closes.
    return {
        "pipeline": b'\x10\x01{"op":"list"}\n{"op":"start"}\n{"op":"list"}\n',
        "truncated": b'\x03\x02{"op":"list"',
        "console": b'\x20\x01{"op":"console"}\nhello\n',
        "nonreader": b'\x40\x00' + b'{"op":"list"}\n' * 4,
        "bad": b'\x05\x03[1]\n\n{bad\n{"op":"start"}\n{"op":"start"}\n',
    }


def qmp():
    msgs = [{"QMP": {"version": {"qemu": {"major": 7}}, "capabilities": []}},
            {"return": {}, "id": 1}, {"return": {"status": "running"}, "id": 2},
            {"error": {"class": "GenericError", "desc": "no"}, "id": 3},
            {"event": "SHUTDOWN", "data": {"guest": True, "reason": "guest-shutdown"},
             "timestamp": {"seconds": 1, "microseconds": 2}}]
    out = {"session": b"\x20\x00" + b"".join(json.dumps(m).encode() + b"\r\n" for m in msgs)}
    out["overlong"] = b"\x05\x10" + b'{"return": "' + b"x" * 64 + b'"}\n{"return":{},"id":7}\n'
    out["bad"] = b"\x01\x00{\n[]\n{\"event\":1}\n{\"error\":{}}\n{\"id\":-1,\"return\":0}\n\0\0\n"
    return out


def wstr(s):
    s = s if isinstance(s, bytes) else s.encode()
    return struct.pack("<I", len(s)) + s


def wconfig(name="app", root="/ext/svc/data", disks=("blk/root.img",), shares=(),
            providers=(), wayland=0, uplink=0, memory=256 << 20, cpus=1,
            cmdline="console=ttyS0 root=PARTLABEL=root"):
    d = f"{root}/{name}"
    out = b"VMC1" + wstr(name) + wstr(d) + wstr(d + "/vmlinux")
    out += struct.pack("<I", len(disks)) + b"".join(wstr(r) + wstr(f"{d}/{r}") for r in disks)
    out += struct.pack("<I", len(shares)) + b"".join(wstr(t) + wstr(h) for t, h in shares)
    out += struct.pack("<I", len(providers)) + b"".join(wstr(p) for p in providers)
    return out + struct.pack("<BBQI", wayland, uplink, memory, cpus) + wstr(cmdline)


def wdiags(*items):
    return b"VMD1" + struct.pack("<I", len(items)) + b"".join(
        bytes([level]) + wstr(vm) + wstr(path) + wstr(msg) for level, vm, path, msg in items)


def vmwire():
    # Byte 0: even, a config; odd, a diagnostics list (fuzz/fuzz_vmwire.c).
    return {
        "minimal": b"\0" + wconfig(),
        "full": b"\0" + wconfig(disks=("rootfs.ext4", "blk/a.img", "blk/b.img"),
                                  shares=(("home", "/ext/home"), ("media", b"/ext/\xff")),
                                  providers=("netvm", "vpn"), wayland=1, uplink=1,
                                  memory=1 << 30, cpus=4, cmdline="console=ttyS0 quiet"),
        "bad": b"\0" + wconfig(disks=("blk/../x.img",), cpus=0),
        "diags": b"\1" + wdiags((2, "app", "blk/x.img", "is a FIFO"),
                                (1, "app", "wayland", "not empty"),
                                (0, "bad\\nname", ".", "note")),
    }


def vsock():
    def hdr(op, gport=1000, hport=1, length=0, flags=0, buf_alloc=4096, fwd=0, valid=True):
        h = struct.pack("<QQIIIHHIII", 3, 2, gport, hport, length, 1, op, flags, buf_alloc, fwd)
        if valid:  # fuzz_vsock.c fixes CIDs and type when byte 0 is odd
            h = bytes([h[0] | 1]) + h[1:]
        return h

    def send(op, payload=b"", **kw):
        return b"\x00" + hdr(op, length=len(payload), **kw) + bytes([len(payload)]) + payload

    post, run, close = b"\x01\x20", b"\x07", b"\x06"
    accept = lambda data: b"\x05" + bytes([len(data)]) + data
    event = lambda slot, bits: b"\x04" + bytes([slot, bits])
    stream = (b"\x02" + post + send(1) + run + accept(b"hello guest") + event(0, 1) + run +
              send(5, b"hello host") + run + send(6, fwd=11) + send(7) + run +
              close + event(0, 1 | 4) + run + send(4, flags=3) + run)
    hostile = (b"\x01" + post + b"\x02\x03" + struct.pack("<QIHH", 0x100000, 44, 1, 3) +
               b"\x03\x03\x00" + b"\x02\x05" + struct.pack("<QIHH", 0x10, 1 << 31, 4, 0) +
               b"\x03\x05\x00" + b"\x03\xff\xff" + run)
    flood = b"\x00" + post + send(1, buf_alloc=1) + run + b"".join(
        send(5, b"x" * 200) for _ in range(30)) + run
    return {"stream": stream, "hostile": hostile, "flood": flood,
            "refused": b"\x03" + post + send(1, hport=7) + send(5, b"x") + send(1, valid=False) + run}


def trace():
    # Byte 0: read size - 1; then the guest's serial output.
    boot = b"[    0.000000] Linux version 6.1\r\nvmhost-guest: virtio-fs data\r\n"
    return {
        "ready": b"\x00" + boot + b"vmhost-guest: ready\r\n",
        "split": b"\x06" + boot + b"vvmhost-guest: rvmhost-guest: ready\n",
        "almost": b"\x02" + boot + b"vmhost-guest: read\nvmhost-guest: READY\n",
        "empty": b"\x10",
    }


def names():
    # Messages, each a length byte and its JSON text (monitor/namepush.h).
    def msgs(*objs):
        out = b""
        for o in objs:
            text = o if isinstance(o, bytes) else json.dumps(o, separators=(",", ":")).encode()
            out += bytes([len(text)]) + text
        return out
    return {
        "list": msgs({"reset": True, "more": True, "watching": True, "add": ["a", "b"]},
                     {"more": False, "add": ["c", "d"]}, {"synced": True}),
        "changes": msgs({"reset": True, "more": False, "watching": True, "add": ["app", "net"]},
                        {"add": ["gfx"], "del": ["net"]}, {"add": ["net"], "del": ["net"]},
                        {"del": ["zzz"]}, {"watching": False}),
        "refused": msgs({"reset": True, "add": ["b", "a"]}, {"add": ["a,b"]},
                        {"synced": False}, b'{"add":["x"],"add":["y"]}', b"[1]",
                        {"reset": True, "add": ["ok"], "more": 1}),
    }


for name, seeds in (("loader", loader()), ("control", control()),
                    ("session", session()), ("qmp", qmp()), ("vmwire", vmwire()),
                    ("vsock", vsock()), ("trace", trace()), ("names", names())):
    d = HERE / "corpus" / name
    d.mkdir(parents=True, exist_ok=True)
    for k, v in seeds.items():
        (d / k).write_bytes(v)
