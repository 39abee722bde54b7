#!/usr/bin/env bash
# Build the guest kit into OUTDIR: vmlinux (cached kernel build), the static
# vm-netconf and vsock-relay, appvm.img and netvm.img, and the demo config tree
# OUTDIR/../demo/svc/data.  Each step is skipped when its inputs did not
# change, so a second run takes seconds.
#
# usage: guest/build.sh OUTDIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
. "$here/scripts/progress.sh"

[ $# -eq 1 ] || die "usage: $0 OUTDIR"
mkdir -p "$1"
out=$(cd "$1" && pwd)

for tool in musl-gcc mke2fs sfdisk nft iperf3 /bin/busybox waypipe wayland-info \
	weston-simple-shm weston-presentation-shm objdump; do
	command -v "$tool" >/dev/null || die "$tool missing: run make deps"
done

# up_to_date NAME KEY: whether NAME was built from KEY; remember_key after.
up_to_date() { [ -e "$out/$1" ] && [ "$(cat "$out/.$1.key" 2>/dev/null)" = "$2" ]; }
remember_key() { echo "$2" >"$out/.$1.key"; }

"$here/kernel/build.sh" "$out/vmlinux" "$out/kernel.log"

# --- vm-netconf and vsock-relay, static with musl ---------------------
# musl ships no kernel headers; borrow the uapi ones (no glibc headers).
kinc=$out/musl-kernel-headers
rm -rf "$kinc" && mkdir -p "$kinc"
ln -s /usr/include/linux "$kinc/linux"
ln -s /usr/include/asm-generic "$kinc/asm-generic"
ln -s "/usr/include/$(gcc -print-multiarch)/asm" "$kinc/asm"

# static_tool NAME SOURCES...: OUTDIR/NAME from the sources, rebuilt when
# they (or the compiler) change.
static_tool() {
	local name=$1 key log
	shift
	key=$( { cat "$@"; musl-gcc --version; } | sha256sum | cut -c1-16)
	if up_to_date "$name" "$key"; then
		stage "$name: up to date"
		return
	fi
	stage "$name: compiling (static, musl)"
	log=$out/$name.log
	: >"$log"
	run "$log" musl-gcc -static -std=gnu17 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror \
		-Wno-unused-parameter -isystem "$kinc" -I "$repo/src" -I "$here/netconf" \
		-o "$out/$name.tmp" $(printf '%s\n' "$@" | grep '\.c$')
	run "$log" strip "$out/$name.tmp"
	mv "$out/$name.tmp" "$out/$name"
	remember_key "$name" "$key"
}
static_tool vm-netconf "$here/netconf/vm-netconf.c" "$here/netconf/netconf.c" \
	"$repo/src/common/linkaddr.c" "$here/netconf/netconf.h" "$repo/src/common/linkaddr.h"
static_tool vsock-relay "$here/vsock-relay/vsock-relay.c"

# --- disk images -------------------------------------------------------
# The key is the staged tree itself (cheap to stage), so any change to a
# rootfs file, busybox, nft or vm-netconf rebuilds the image.
for role in appvm netvm; do
	staging=$out/staging/$role
	log=$out/$role.log
	: >"$log"
	run "$log" "$here/scripts/mkrootfs.sh" "$role" "$staging" "$out"
	key=$( { tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
			-C "$staging" -cf - .; cat "$here/scripts/mkimage.sh"; } | sha256sum | cut -c1-16)
	if up_to_date "$role.img" "$key"; then
		stage "$role.img: up to date"
		continue
	fi
	stage "$role.img: making image (log: $log)"
	run "$log" "$here/scripts/mkimage.sh" "$staging" "$out/$role.img"
	remember_key "$role.img" "$key"
	stage "$role.img: $(du -h --apparent-size "$out/$role.img" | cut -f1)"
done

# --- demo config tree --------------------------------------------------
stage "demo tree: $(dirname "$out")/demo/svc/data"
"$here/scripts/mkdemo.sh" "$out" "$(dirname "$out")/demo"
stage "guest kit ready in $out"
