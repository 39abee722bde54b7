#!/usr/bin/env bash
# The body of `make deb`: build the Debian package from a copy of the tree
# in BUILD/deb/ (dpkg-buildpackage writes next to the tree and into
# debian/, so the checkout stays clean), check it with lintian, and leave
# BUILD/vmhost_VERSION_amd64.deb.  Fails on any lintian error or warning
# (overrides in debian/vmhost.lintian-overrides say why), and when
# debian/changelog's version is not meson.build's.
#
# usage: scripts/deb.sh BUILD
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "${1:?usage: deb.sh BUILD}"
build=$(cd "$1" && pwd)

version=$(meson introspect --projectinfo "$root/meson.build" |
	sed -n 's/.*"version": *"\([^"]*\)".*/\1/p')
debversion=$(cd "$root" && dpkg-parsechangelog -S Version)
if [ "$version" != "$debversion" ]; then
	echo "deb.sh: meson.build says $version, debian/changelog $debversion:" \
		"add a changelog entry (dch -v $version)" >&2
	exit 1
fi
arch=$(dpkg-architecture -qDEB_HOST_ARCH)

work=$build/deb
src=$work/vmhost-$version
rm -rf "$work"
mkdir -p "$src"
# The tree as a fresh clone would have it: no build outputs, no caches.
tar -C "$root" --exclude=./build --exclude='./build-*' --exclude=./.git \
	--exclude=__pycache__ --exclude=.pytest_cache --exclude=./obj-\* \
	-cf - . | tar -C "$src" -xf -

echo "deb: dpkg-buildpackage -b -us -uc (log: $work/build.log)"
if ! (cd "$src" && dpkg-buildpackage -b -us -uc) >"$work/build.log" 2>&1; then
	tail -n 30 "$work/build.log" >&2
	echo "deb.sh: dpkg-buildpackage failed (full log: $work/build.log)" >&2
	exit 1
fi

changes=$work/vmhost_${version}_$arch.changes
deb=vmhost_${version}_$arch.deb
echo "deb: lintian (log: $work/lintian.log)"
status=0
lintian --fail-on error,warning --display-info --show-overrides "$changes" \
	>"$work/lintian.log" 2>&1 || status=$?
cat "$work/lintian.log"
if [ "$status" -ne 0 ]; then
	echo "deb.sh: lintian reports errors or warnings (above)" >&2
	exit 1
fi
cp "$work/$deb" "$build/$deb"
echo "deb: $build/$deb"
