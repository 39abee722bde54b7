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
                     *vm("net")),
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


def trace():
    # Byte 0: read size - 1; then the guest's serial output.
    boot = b"[    0.000000] Linux version 6.1\r\nvmhost-guest: virtio-fs data\r\n"
    return {
        "ready": b"\x00" + boot + b"vmhost-guest: ready\r\n",
        "split": b"\x06" + boot + b"vvmhost-guest: rvmhost-guest: ready\n",
        "almost": b"\x02" + boot + b"vmhost-guest: read\nvmhost-guest: READY\n",
        "empty": b"\x10",
    }


for name, seeds in (("loader", loader()), ("control", control()),
                    ("session", session()), ("qmp", qmp()), ("trace", trace())):
    d = HERE / "corpus" / name
    d.mkdir(parents=True, exist_ok=True)
    for k, v in seeds.items():
        (d / k).write_bytes(v)
