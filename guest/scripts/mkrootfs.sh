#!/usr/bin/env bash
# Stage a guest root tree: busybox-static with its applet links, the files
# under guest/rootfs/{common,ROLE}, vm-netconf, iperf3 (both roles), for
# netvm nft, and for appvm the Wayland guest end (waypipe, vsock-relay,
# wayland-info, weston-simple-shm, weston-presentation-shm), each with the
# shared libraries it loads.
#
# usage: mkrootfs.sh ROLE STAGING-DIR KITDIR (holding vm-netconf, vsock-relay)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rootfs=$here/../rootfs
role=$1
dst=$2
kit=$3

[ -d "$rootfs/$role" ] || { echo "unknown image role $role" >&2; exit 1; }
busybox=/bin/busybox
"$busybox" --list-full >/dev/null || { echo "$busybox is not busybox-static" >&2; exit 1; }

rm -rf "$dst"
mkdir -p "$dst"
for d in bin sbin usr/bin usr/sbin lib etc proc sys dev run tmp var root mnt; do
	mkdir -p "$dst/$d"
done
chmod 0700 "$dst/root"
chmod 1777 "$dst/tmp"

install -m 0755 "$busybox" "$dst/bin/busybox"
"$busybox" --list-full | while read -r applet; do
	[ -e "$dst/$applet" ] || [ -L "$dst/$applet" ] || ln -s /bin/busybox "$dst/$applet"
done

cp -a "$rootfs/common/." "$dst/"
cp -a "$rootfs/$role/." "$dst/"
install -m 0755 "$kit/vm-netconf" "$dst/sbin/vm-netconf"

# copy_with_libs BIN [LIBDIR]: BIN and what ldd lists (loader included),
# same paths; libraries found in LIBDIR (stand-ins) are not copied.
copy_with_libs() {
	local bin=$1 libdir=${2:-} lib
	install -D -m 0755 "$bin" "$dst$bin"
	for lib in $(LD_LIBRARY_PATH=$libdir ldd "$bin" | grep -oE '/[^ ]+'); do
		[ -n "$libdir" ] && [ "${lib#"$libdir"/}" != "$lib" ] && continue
		install -D -m 0755 "$(readlink -f "$lib")" "$dst$lib"
	done
}

if [ "$role" = netvm ]; then
	copy_with_libs /usr/sbin/nft
fi
# Both roles: iperf3 for the inter-VM throughput benchmark (bench/bench.py).
copy_with_libs /usr/bin/iperf3

if [ "$role" = appvm ]; then
	# Wayland guest end (docs/wayland.md).  waypipe runs with --no-gpu
	# and without --video, so FFmpeg and VA-API (about 140 MB with their
	# own libraries) are replaced by stand-ins that abort if called.
	stubs=$dst/usr/lib/vmhost-stubs
	"$here/stublibs.sh" /usr/bin/waypipe "$stubs" \
		$(readelf -d /usr/bin/waypipe | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' |
			grep -E '^lib(avcodec|avutil|swscale|va)\.')
	copy_with_libs /usr/bin/waypipe "$stubs"
	# Only waypipe loads them: /etc/init.d/wayland sets LD_LIBRARY_PATH.
	for bin in wayland-info weston-simple-shm weston-presentation-shm; do
		copy_with_libs "/usr/bin/$bin"
	done
	install -m 0755 "$kit/vsock-relay" "$dst/sbin/vsock-relay"
fi
