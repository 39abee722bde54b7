#!/usr/bin/env bash
# Write the demo config tree DEMO/svc/data from the guest kit in GUESTDIR:
# netvm (the network provider, with an uplink that may reach the host's
# loopback) and appvm (its client, with
# a shared dir).  Large files are symlinks into GUESTDIR.  DEMO is the data
# root, so shared directories live under it.
#
# usage: mkdemo.sh GUESTDIR DEMO
set -euo pipefail
guest=$1
demo=$2
data=$demo/svc/data

mkdir -p "$data"
for vm in netvm appvm; do
	mkdir -p "$data/$vm/blk"
	ln -sfnr "$guest/vmlinux" "$data/$vm/vmlinux"
	ln -sfnr "$guest/$vm.img" "$data/$vm/blk/root.img"
done
# The demo shows appvm reaching a service on the host's own loopback, which
# an uplink allows only when it says so.
echo host-loopback >"$data/netvm/uplink"

mkdir -p "$data/appvm/providers/net"
: >"$data/appvm/providers/net/netvm"

shared=$demo/shared/demo
mkdir -p "$shared" "$data/appvm/shared-dirs/demo"
echo "hello from the vmhost demo" >"$shared/hello"
ln -sfnr "$shared" "$data/appvm/shared-dirs/demo/dir"
