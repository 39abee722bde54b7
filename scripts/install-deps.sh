#!/usr/bin/env bash
# Install the Debian packages every make target needs on a fresh Debian 12
# (build, guest kit, tests, fuzzing, demo, bench, deb).  Idempotent:
# apt-get runs only when something is missing.  tests/test_deps.py checks
# that every program the scripts and tests run comes from this list.
#
# usage: scripts/install-deps.sh [--bench] [--list]
#   --bench: also what only `make bench` needs (the libvirt peer)
#   --list:  print the names only, --bench's too (tests/test_deps.py)
set -euo pipefail

packages=(
	# build
	build-essential meson ninja-build pkg-config libjansson-dev libmnl-dev
	libcmocka-dev clang musl-tools libseccomp-dev
	# the compositor socket's grants (src/vmm/compositor.c)
	libacl1-dev
	# VMM; passt is the uplink's NAT (docs/networking.md)
	qemu-system-x86 qemu-system-common qemu-utils passt
	# guest kit: kernel source and its build tools, images
	linux-source-6.1 bc bison flex libelf-dev libssl-dev xz-utils
	busybox-static e2fsprogs fdisk nftables
	# tests (pytest-timeout: a hung test fails with its stack instead of
	# eating the CI budget); tmux gives `vm console` a real terminal
	python3-pytest python3-pytest-timeout iproute2 procps psmisc socat tmux util-linux
	# leak checks (tests/test_valgrind.py)
	valgrind
	# fuzzing (make fuzz, the smoke in make check): clang's libFuzzer
	# runtime is only a Recommends of clang
	libclang-rt-14-dev
	# make demo (scripts/demo.sh reads vm list --json)
	jq
	# benchmarks: iperf3, also copied into the guest images
	iperf3
	# make deb: dpkg-buildpackage, dh, lintian; bash-completion's pkg-config
	# file says where completions go; make check-deb: systemd-analyze
	# checks the unit, s6 runs the s6 example, man finds the pages
	dpkg-dev debhelper lintian bash-completion systemd s6 man-db
	# Wayland (docs/wayland.md): the guest end and demo clients copied into
	# appvm.img, headless weston and screenshots for the tests
	waypipe wayland-utils weston python3-pil
	# getfacl: the tests read the compositor socket's grants
	acl
)
# With --bench (make bench): the peer bench/bench.py compares vmhost with,
# Debian's libvirt (not for make check: it pulls in systemd's packages);
# git for the tree a run measured; strace and perf for
# bench/profile_list.py.
bench_packages=(libvirt-daemon-system libvirt-clients git strace linux-perf)

bench=false
list=false
for arg in "$@"; do
	case $arg in
	--bench) bench=true ;;
	--list) list=true ;;
	*) echo "usage: $0 [--bench] [--list]" >&2; exit 2 ;;
	esac
done
if $list; then
	printf '%s\n' "${packages[@]}" "${bench_packages[@]}"
	exit 0
fi
if $bench; then
	packages+=("${bench_packages[@]}")
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
