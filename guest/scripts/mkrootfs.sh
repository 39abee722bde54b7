#!/usr/bin/env bash
# Stage a guest root tree: busybox-static with its applet links, the files
# under guest/rootfs/{common,ROLE}, vm-netconf, iperf3 (both roles) and
# for netvm nft, each with the shared libraries it loads.
#
# usage: mkrootfs.sh ROLE STAGING-DIR VM-NETCONF
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rootfs=$here/../rootfs
role=$1
dst=$2
netconf=$3

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
install -m 0755 "$netconf" "$dst/sbin/vm-netconf"

# copy_with_libs BIN: BIN and what ldd lists (loader included), same paths.
copy_with_libs() {
	local bin=$1 lib
	install -D -m 0755 "$bin" "$dst$bin"
	for lib in $(ldd "$bin" | grep -oE '/[^ ]+'); do
		install -D -m 0755 "$(readlink -f "$lib")" "$dst$lib"
	done
}

if [ "$role" = netvm ]; then
	copy_with_libs /usr/sbin/nft
fi
# Both roles: iperf3 for the inter-VM throughput benchmark (bench/bench.py).
copy_with_libs /usr/bin/iperf3
