#!/usr/bin/env bash
# Build the guest vmlinux from Debian's linux-source-6.1 and the fragment
# beside this script, cached under ${XDG_CACHE_HOME:-~/.cache}/vmhost keyed by
# the fragment's hash and the source package version.
#
# usage: build.sh OUTPUT-VMLINUX LOGFILE
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../scripts/progress.sh"

out=$1
log=$2
fragment=$here/vmhost.config
tarball=/usr/src/linux-source-6.1.tar.xz

[ -r "$tarball" ] || die "$tarball missing: apt-get install linux-source-6.1"
version=$(dpkg-query -W -f='${Version}' linux-source-6.1)
key=$( { cat "$fragment"; echo "$version"; } | sha256sum | cut -c1-16)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/vmhost/kernel
cached=$cache/vmlinux-$key

mkdir -p "$(dirname "$out")" "$(dirname "$log")" "$cache"
: >"$log"

if [ -s "$cached" ]; then
	stage "kernel: cached ($cached)"
	cp "$cached" "$out.tmp" && mv "$out.tmp" "$out"
	exit 0
fi

# One build tree per key, so an interrupted build resumes where it stopped.
tree=$cache/build-$key
src=$tree/linux-source-6.1
if [ ! -f "$src/Makefile" ]; then
	stage "kernel: unpacking $tarball (about a minute)"
	rm -rf "$tree"
	mkdir -p "$tree"
	run "$log" tar -C "$tree" -xf "$tarball"
fi

stage "kernel: configuring (tinyconfig + $(basename "$fragment"))"
run "$log" make -C "$src" tinyconfig
run "$log" "$src/scripts/kconfig/merge_config.sh" -m -O "$src" "$src/.config" "$fragment"
run "$log" make -C "$src" olddefconfig

# Every line of the fragment must survive olddefconfig, or a dependency is
# missing and the guest would silently lack a device.
missing=$(grep -E '^CONFIG_[A-Z0-9_]+=' "$fragment" | while read -r line; do
	grep -qxF "$line" "$src/.config" || echo "$line"
done)
[ -z "$missing" ] || die "kernel config dropped: $(echo $missing); see $src/.config"

jobs=$(( $(nproc) + 1 ))
stage "kernel: compiling with $jobs jobs (full log: $log)"
make -C "$src" -j"$jobs" vmlinux >>"$log" 2>&1 &
pid=$!
while kill -0 "$pid" 2>/dev/null; do
	sleep 20
	n=$(grep -c '^  CC ' "$log" || true)
	kill -0 "$pid" 2>/dev/null && stage "kernel: compiling, $n files compiled"
done
wait "$pid" || { tail -n 20 "$log" >&2; die "kernel build failed; full output in $log"; }

cp "$src/vmlinux" "$cached.tmp" && mv "$cached.tmp" "$cached"
cp "$cached" "$out.tmp" && mv "$out.tmp" "$out"
rm -rf "$tree"
stage "kernel: built $(du -h "$out" | cut -f1) vmlinux, cached as $cached"
