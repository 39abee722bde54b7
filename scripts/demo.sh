#!/usr/bin/env bash
# The body of `make demo`: start vmhostd on BUILD/demo/state with the demo
# config tree BUILD/demo/svc/data (written by `make guest`), start the demo
# VMs, and say how to use them.
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

if [ ! -d "$data" ]; then
	echo "demo.sh: $data missing: run make guest" >&2
	exit 1
fi
export VMHOST_STATE_DIR=$state

# Reuse a daemon already serving this state dir.
if ! "$vm" list >/dev/null 2>&1; then
	# shellcheck disable=SC2086 (a list of words)
	"$vmhostd" --config-root "$data" --data-root "$build/demo" \
		--state-dir "$state" --cgroup-parent vmhost-demo ${VMHOSTD_OPTIONS:-}
fi

# Providers first: appvm gets its network from netvm.
for name in netvm appvm; do
	case $("$vm" list --json | jq -r --arg n "$name" '.[] | select(.name == $n) | .state') in
	running) echo "$name: already running" ;;
	*) "$vm" start "$name" ;;
	esac
done

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
Stop the daemon (it powers the VMs off first):

  kill \$(cat $state/lock)
EOT
