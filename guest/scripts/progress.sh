# Shared helpers for the guest build scripts: one line per stage with its
# elapsed time, full tool output kept in a log that errors point to.
# shellcheck shell=bash

progress_t0=$(date +%s)

stage() {
	printf '[%4ss] %s\n' "$(( $(date +%s) - progress_t0 ))" "$*"
}

die() {
	printf 'error: %s\n' "$*" >&2
	exit 1
}

# run LOG CMD...: run CMD with its output appended to LOG; on failure show
# the tail of LOG and name it.
run() {
	local log=$1; shift
	if ! "$@" >>"$log" 2>&1; then
		tail -n 20 "$log" >&2
		die "'$*' failed; full output in $log"
	fi
}
