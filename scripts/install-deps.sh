#!/usr/bin/env bash
# Install the Debian packages vmhost needs to build, test and run.
# Idempotent: apt-get runs only when something is missing.
set -euo pipefail

packages=(
	# build
	build-essential meson ninja-build pkg-config libjansson-dev libmnl-dev
	libcmocka-dev clang musl-tools
	# VMM
	qemu-system-x86 qemu-system-common qemu-utils
	# guest kit: kernel source and its build tools, images
	linux-source-6.1 bc bison flex libelf-dev libssl-dev xz-utils
	busybox-static e2fsprogs fdisk nftables
	# tests
	python3-pytest iproute2 procps psmisc socat
	# leak checks (tests/test_valgrind.py); clang above also builds make fuzz
	valgrind
	# benchmarks: iperf3, also copied into the guest images
	iperf3
)
# With --bench (make bench): the peer bench/bench.py compares vmhost with,
# Debian's libvirt.  Not for make check: it pulls in systemd's packages.
if [ "${1:-}" = --bench ]; then
	packages+=(libvirt-daemon-system libvirt-clients)
fi

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "deps: all ${#packages[@]} packages present"
	exit 0
fi

echo "deps: installing ${missing[*]}"
sudo=
[ "$(id -u)" -eq 0 ] || sudo=sudo
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
