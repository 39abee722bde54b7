#!/usr/bin/env bash
# Build the libFuzzer targets (fuzz/*.c) with clang, ASan and UBSan, run
# each for FUZZ_SECONDS (default 600) on its checked-in seed corpus plus
# the corpus grown by earlier runs, and print a summary.
#
#   scripts/fuzz.sh OUT [TARGET...]       (make fuzz: OUT = build/fuzz)
#   FUZZ_SECONDS=60 scripts/fuzz.sh build/fuzz qmp
#
# Targets: loader, control, session, qmp, trace (see fuzz/README.md).  Crashes
# are written to OUT/crashes/ and make the script exit 1; reproduce one
# with OUT/fuzz-TARGET FILE.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?usage: fuzz.sh OUT [TARGET...]}
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(loader control session qmp trace)
seconds=${FUZZ_SECONDS:-600}
cc=${CC_FUZZ:-clang}
mkdir -p "$out/crashes"
out=$(cd "$out" && pwd)

cflags=(-std=gnu17 -D_GNU_SOURCE -g -O1 -I"$root/src"
	-Wall -Wextra -Werror -Wno-unused-parameter
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined)

sources() {
	case $1 in
	loader) echo src/config/diags.c src/config/values.c src/config/vmconfig.c ;;
	control) echo src/daemon/control.c src/daemon/buf.c src/daemon/loop.c \
		src/daemon/proto.c src/config/values.c ;;
	session) echo src/daemon/control.c src/daemon/buf.c src/daemon/loop.c ;;
	qmp) echo src/vmm/qmp.c ;;
	trace) echo src/common/trace.c ;;
	*) echo "fuzz.sh: unknown target $1 (loader, control, session, qmp, trace)" >&2; exit 2 ;;
	esac
}

build() {
	local t=$1 src
	src=$(sources "$t")
	(cd "$root" && $cc "${cflags[@]}" "fuzz/fuzz_$t.c" $src \
		$(pkg-config --cflags --libs jansson) -o "$out/fuzz-$t")
}

for t in "${targets[@]}"; do
	build "$t"
done

summary=()
status=0
for t in "${targets[@]}"; do
	corpus=$out/corpus/$t
	mkdir -p "$corpus"
	log=$out/$t.log
	before=$(ls "$out/crashes" | grep -c "^$t-" || true)
	echo "fuzz: $t for $seconds s (log $log)"
	# Timeouts (a loader that blocks on a FIFO) and leaks count as
	# findings, like crashes.
	nice -n 10 "$out/fuzz-$t" -max_total_time="$seconds" -timeout=30 \
		-rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$out/crashes/$t-" \
		"$corpus" "$root/fuzz/corpus/$t" >"$log" 2>&1 || true
	after=$(ls "$out/crashes" | grep -c "^$t-" || true)
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true)
	ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true)
	units=$(ls "$corpus" | wc -l)
	found=$((after - before))
	[ "$found" -eq 0 ] || status=1
	summary+=("$(printf '%-8s %6s s %12s execs  cov %5s  ft %6s  corpus %5s  crashes %s' \
		"$t" "$seconds" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$units" "$found")")
done

echo
echo "fuzz summary ($out):"
printf '  %s\n' "${summary[@]}"
[ "$status" -eq 0 ] || echo "fuzz: findings in $out/crashes" >&2
exit "$status"
