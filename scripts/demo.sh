#!/usr/bin/env bash
# The body of `make demo`: start vmhostd on BUILD/demo/state with the demo
# config tree BUILD/demo/svc/data (written by `make guest`), start the demo
# VMs, and say how to use them.  gfxvm is a graphical VM: its Wayland
# applications show on the host's compositor (WAYLAND_DISPLAY), or, on a
# host without one, on a headless weston started here, whose screen is
# saved to BUILD/demo/screenshot.png with a guest's window on it.
#
# usage: scripts/demo.sh BUILD [STATE-DIR]
#
# The programs are BUILD's unless VMHOST_BIN names where vm and vmhostd are
# (one directory, or two separated by a colon): installed from the
# package, VMHOST_BIN=/usr/bin:/usr/sbin.  VMHOSTD_OPTIONS adds options to
# vmhostd (for example --link-prefix), as in /etc/default/vmhost.
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
data=$build/demo/svc/data
state=${2:-$build/demo/state}

# find_program NAME: NAME in one of VMHOST_BIN's directories.
find_program() {
	local dir
	IFS=: read -ra dirs <<<"${VMHOST_BIN:-$build}"
	for dir in "${dirs[@]}"; do
		[ -x "$dir/$1" ] && { echo "$dir/$1"; return; }
	done
	echo "demo.sh: no $1 in ${VMHOST_BIN:-$build}" >&2
	exit 1
}
vm=$(find_program vm)
vmhostd=$(find_program vmhostd)
# vmhost-vsock: the build's, or where the package puts it (vmhostd's
# default).
backend=
[ -z "${VMHOST_BIN:-}" ] && backend=$build/src/vsock/vmhost-vsock

if [ ! -d "$data" ]; then
	echo "demo.sh: $data missing: run make guest" >&2
	exit 1
fi
export VMHOST_STATE_DIR=$state

# The compositor: the session's, or a headless weston of the demo's own
# (its runtime directory BUILD/demo/wayland, 0700), kept if it still runs.
wl=$build/demo/wayland
own_weston=
if [ -n "${WAYLAND_DISPLAY:-}" ]; then
	case $WAYLAND_DISPLAY in
	/*) display=$WAYLAND_DISPLAY ;;
	*) display=${XDG_RUNTIME_DIR:-/run/user/$(id -u)}/$WAYLAND_DISPLAY ;;
	esac
else
	display=$wl/wayland-demo
	own_weston=1
	if ! { [ -S "$display" ] && kill -0 "$(cat "$wl/weston.pid" 2>/dev/null)" 2>/dev/null; }; then
		mkdir -p "$wl"
		chmod 0700 "$wl"
		rm -f "$display" "$display.lock"
		# --debug: weston-screenshooter may take the screen.
		XDG_RUNTIME_DIR=$wl setsid weston --backend=headless-backend.so \
			--use-pixman --debug --socket=wayland-demo --idle-time=0 \
			--width=1024 --height=768 </dev/null >"$wl/weston.log" 2>&1 &
		echo $! >"$wl/weston.pid"
		for _ in $(seq 300); do
			[ -S "$display" ] && break
			kill -0 "$(cat "$wl/weston.pid")" 2>/dev/null || break
			sleep 0.1
		done
		if [ ! -S "$display" ]; then
			echo "demo.sh: weston did not start; see $wl/weston.log" >&2
			exit 1
		fi
	fi
fi

# Reuse a daemon already serving this state dir.
if ! "$vm" list >/dev/null 2>&1; then
	# shellcheck disable=SC2086 (a list of words)
	"$vmhostd" --config-root "$data" --data-root "$build/demo" \
		--state-dir "$state" --cgroup-parent vmhost-demo \
		--wayland-display "$display" ${backend:+--vsock-backend "$backend"} \
		${VMHOSTD_OPTIONS:-}
fi

# Providers first: appvm gets its network from netvm.
for name in netvm appvm gfxvm; do
	case $("$vm" list --json | jq -r --arg n "$name" '.[] | select(.name == $n) | .state') in
	running) echo "$name: already running" ;;
	*) "$vm" start "$name" ;;
	esac
done

# A Wayland application in gfxvm, started on its console once it is up.
for _ in $(seq 240); do
	"$vm" log gfxvm 2>/dev/null | grep -q "vmhost-guest: ready" && break
	sleep 0.5
done
printf 'weston-simple-shm >/dev/null 2>&1 &\n' | "$vm" console --linger 1 gfxvm >/dev/null 2>&1

screenshot=
if [ -n "$own_weston" ]; then
	# Once the window is on weston's scene, a picture of the screen.
	shot=$build/demo/screenshot.png
	rm -f "$shot"
	mapped=
	for _ in $(seq 240); do
		if XDG_RUNTIME_DIR=$wl WAYLAND_DISPLAY=wayland-demo timeout 10 weston-debug scene-graph 2>/dev/null |
			grep -q "top-level window 'simple-shm'"; then
			mapped=1
			break
		fi
		sleep 0.5
	done
	tmp=$(mktemp -d)
	[ -n "$mapped" ] &&
		(cd "$tmp" && XDG_RUNTIME_DIR=$wl WAYLAND_DISPLAY=wayland-demo weston-screenshooter) &&
		mv "$tmp"/wayland-screenshot-*.png "$shot" && screenshot=$shot
	rm -rf "$tmp"
fi

echo
"$vm" list
cat <<EOT

The demo VMs run under vmhostd (state in $state).

  export VMHOST_STATE_DIR=$state
  $vm console appvm        # a shell in appvm; Ctrl-] detaches
  $vm log -f netvm         # follow netvm's serial console
  $vm info appvm           # devices, shares, accelerator
  $vm stop appvm           # ACPI power off (--force to kill)

The shared directory is $build/demo/shared/demo (/run/virtiofs/demo in appvm).
appvm's network goes through netvm (NAT out of its uplink, which passt
provides); netvm's uplink file says host-loopback, so the host's loopback
is 10.0.2.2 from there (without it, nothing reaches it).  Serve something
on the host:

  python3 -m http.server --bind 127.0.0.1 8000

and in appvm's console:  wget -qO- http://10.0.2.2:8000/
Stop the daemon (it powers the VMs off first), then remove the demo's
empty cgroup parent, which the daemon has no right to remove from the
hierarchy's root (vmhostd(8), --cgroup-parent):

  pid=\$(cat $state/lock); kill \$pid; tail --pid=\$pid -f /dev/null
  rmdir /sys/fs/cgroup/*/vmhost-demo /sys/fs/cgroup/vmhost-demo 2>/dev/null

gfxvm is a graphical VM: a Wayland application started on its console
shows on the host's compositor ($display), through
vmhost-vsock and a waypipe host end (docs/wayland.md):

  $vm console gfxvm        # then: weston-simple-shm &
EOT
if [ -n "$screenshot" ]; then
	cat <<EOT

The compositor is a headless weston started for the demo (no session
compositor here); a screenshot of it with gfxvm's window is in

  $screenshot

Stop it with:  kill \$(cat $wl/weston.pid)
EOT
elif [ -n "$own_weston" ]; then
	echo
	echo "demo.sh: no screenshot of gfxvm's window (see vm info gfxvm, vm log gfxvm)" >&2
	exit 1
fi
