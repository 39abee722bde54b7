#!/usr/bin/env bash
# Make a GPT disk image with one partition named "root" holding an ext4
# filesystem built from a folder: mke2fs -d, no root, no loop devices.
#
# usage: mkimage.sh STAGING-DIR OUTPUT.img
set -euo pipefail
src=$1
out=$2

# Room for the files plus a margin; no journal, the root is read-only.
used_mb=$(( $(du -sm --apparent-size "$src" | cut -f1) ))
size_mb=$(( used_mb + used_mb / 2 + 8 ))
fs=$out.fs.tmp
disk=$out.tmp
rm -f "$fs" "$disk"

mke2fs -F -t ext4 -O ^has_journal -L root -E root_owner=0:0 -d "$src" \
	"$fs" "${size_mb}M"

# 1 MiB before the partition, and room for the backup GPT after it.
truncate -s $(( size_mb + 2 ))M "$disk"
sfdisk --no-reread --no-tell-kernel "$disk" <<EOT
label: gpt
start=2048, size=$(( size_mb * 2048 )), type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=root
EOT
dd if="$fs" of="$disk" bs=1M seek=1 conv=notrunc,sparse status=none
rm -f "$fs"
mv "$disk" "$out"
