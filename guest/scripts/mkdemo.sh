#!/usr/bin/env bash
# Write the demo config tree DEMO/svc/data from the guest kit in GUESTDIR:
# netvm (the network provider, with an uplink that may reach the host's
# loopback), appvm (its client, with a shared dir) and gfxvm (a graphical
# application VM: wayland, no network).  Large files are symlinks into GUESTDIR.  DEMO is the data
# root, so shared directories live under it.
#
# usage: mkdemo.sh GUESTDIR DEMO
set -euo pipefail
guest=$1
demo=$2
data=$demo/svc/data

mkdir -p "$data"
for vm in netvm appvm gfxvm; do
	mkdir -p "$data/$vm/blk"
	ln -sfnr "$guest/vmlinux" "$data/$vm/vmlinux"
	image=$vm.img
	[ "$vm" = gfxvm ] && image=appvm.img
	ln -sfnr "$guest/$image" "$data/$vm/blk/root.img"
done
# The demo shows appvm reaching a service on the host's own loopback, which
# an uplink allows only when it says so.
echo host-loopback >"$data/netvm/uplink"

# gfxvm's applications show on the host's compositor (docs/wayland.md).
: >"$data/gfxvm/wayland"

mkdir -p "$data/appvm/providers/net"
: >"$data/appvm/providers/net/netvm"

shared=$demo/shared/demo
mkdir -p "$shared" "$data/appvm/shared-dirs/demo"
echo "hello from the vmhost demo" >"$shared/hello"
ln -sfnr "$shared" "$data/appvm/shared-dirs/demo/dir"
