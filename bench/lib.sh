# Shared set-up of bench/wire.sh and bench/heartbeat.sh (sourced, not run).
#
# bench_init SUFFIX TMPNAME: sets STAMP, OUT (bench/out/<stamp><SUFFIX>), BIN,
# TMP (a fresh temporary directory), PIDS (processes to kill on exit) and
# LOAD (the load tool, built here); installs the exit trap that kills every
# pid in PIDS and removes TMP. Needs ROOT (the repository) and the current
# directory at ROOT.

log() { printf '== %s\n' "$*" >&2; }
load1() { cut -d' ' -f1 /proc/loadavg; }

bench_cleanup() {
	local pid
	for pid in "${PIDS[@]:-}"; do
		[ -n "$pid" ] && kill "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]:-}"; do
		[ -n "$pid" ] && wait "$pid" 2>/dev/null || true
	done
	rm -rf "$TMP"
}

bench_init() {
	STAMP=$(date -u +%Y%m%dT%H%M%SZ)
	OUT="$ROOT/bench/out/$STAMP$1"
	BIN="$ROOT/bench/out/bin"
	mkdir -p "$OUT" "$BIN"
	TMP=$(mktemp -d "${TMPDIR:-/tmp}/$2.XXXXXX")
	PIDS=()
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
	log "building cmd/luminary-load"
	go build -o "$BIN/luminary-load" ./cmd/luminary-load
	LOAD="$BIN/luminary-load"
}
