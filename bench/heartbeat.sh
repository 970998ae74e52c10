#!/usr/bin/env bash
# Heartbeat benchmarks, side by side: a stock gun.js relay running Luminary
# as published (peers write the tick; messages share one register field)
# versus the Luminary relay (the relay is the metronome and sequencer).
# Everything is driven by cmd/luminary-load over Gun's wire protocol.
#
#   bash bench/heartbeat.sh ticks      # tick gaps and lost ticks, N = 1 250 1000 5000
#   bash bench/heartbeat.sh messages   # 50 clients on one instance, rising msgs/s
#   bash bench/heartbeat.sh signed     # verified SEA puts/s vs unsigned vs raw P-256 verify
#   bash bench/heartbeat.sh all        # the three in a row
#
# Each figure set starts FRESH relays on free 127.0.0.1 ports (one per
# scenario), alternates gun.js and Luminary, writes JSON per run, relay
# logs and report.txt to bench/out/<stamp>-<set>/, prints a comparison
# table, and kills everything it started on exit. Every run is bounded by
# RUN_TIMEOUT seconds; each set takes 2-7 minutes on 2 cores.
#
# Knobs (environment):
#   TICKS_N="1 250 1000 5000"   instances per ticks scenario
#   TICKS_DURATION=10s TICKS_WARMUP=2s TICKS_FOLLOWERS=1 TICKS_SOULS_PER_CONN=500
#   TICKS_MEMORY=1      also run our relay with --memory (graph in RAM) for
#                       N >= 250: a diagnostic that isolates the durable graph
#   MSG_CLIENTS=50 MSG_RATES=100,500,1000,2000,3000 MSG_STEP=5s MSG_DRAIN=3s MSG_CURVE=secp256k1
#   SIGNED_SCENARIOS="4x128 1x2000"   writers x window per writer
#   SIGNED_DURATION=10s SIGNED_PRESIGN=250000 SIGNED_USERS=4 VERIFY_BENCH=4s
#   RUN_TIMEOUT=240     seconds; hard bound for each single run
#   RELAY_MAX=900       seconds; hard bound for each relay process
#   SKIP_GUN=1 / SKIP_OURS=1
#   LUMINARY_FLAGS=""   extra flags for `luminary serve`
#   LUMINARY_BIN=path   use this relay binary instead of building ./cmd/luminary
#
# The gun.js relay is bench/gunrelay.mjs: axe:false (with AXE on, raw
# subscribers of a soul get only a fraction of the puts), multicast off,
# RAD on disk, SEA loaded (gun's node server loads it; it verifies signed
# user-space puts). The Luminary relay runs with its defaults (bbolt on
# disk, secure auth mode) plus --admins (a key this script creates to host
# worlds through the signed HTTP API) and --max-worlds.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

SET=${1:-}
case $SET in
ticks | messages | signed | all) ;;
*)
	echo "usage: bash bench/heartbeat.sh ticks|messages|signed|all" >&2
	exit 2
	;;
esac

TICKS_N=${TICKS_N:-"1 250 1000 5000"}
TICKS_DURATION=${TICKS_DURATION:-10s}
TICKS_WARMUP=${TICKS_WARMUP:-2s}
TICKS_FOLLOWERS=${TICKS_FOLLOWERS:-1}
TICKS_SOULS_PER_CONN=${TICKS_SOULS_PER_CONN:-500}
TICKS_MEMORY=${TICKS_MEMORY:-1}
MSG_CLIENTS=${MSG_CLIENTS:-50}
MSG_RATES=${MSG_RATES:-100,500,1000,2000,3000}
MSG_STEP=${MSG_STEP:-5s}
MSG_DRAIN=${MSG_DRAIN:-3s}
MSG_CURVE=${MSG_CURVE:-secp256k1}
SIGNED_SCENARIOS=${SIGNED_SCENARIOS:-"4x128 1x2000"}
SIGNED_DURATION=${SIGNED_DURATION:-10s}
SIGNED_PRESIGN=${SIGNED_PRESIGN:-250000}
SIGNED_USERS=${SIGNED_USERS:-4}
VERIFY_BENCH=${VERIFY_BENCH:-4s}
RUN_TIMEOUT=${RUN_TIMEOUT:-240}
RELAY_MAX=${RELAY_MAX:-900}
SKIP_GUN=${SKIP_GUN:-0}
SKIP_OURS=${SKIP_OURS:-0}
LUMINARY_FLAGS=${LUMINARY_FLAGS:-}

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_init "-$SET" luminary-hb

OURS=0
LUMINARY_BIN=${LUMINARY_BIN:-}
if [ "$SKIP_OURS" != 1 ] && [ -n "$LUMINARY_BIN" ]; then
	[ -x "$LUMINARY_BIN" ] && OURS=1 || log "LUMINARY_BIN=$LUMINARY_BIN is not executable; skipping our relay"
elif [ "$SKIP_OURS" != 1 ]; then
	LUMINARY_BIN="$BIN/luminary"
	log "building cmd/luminary"
	if go build -o "$LUMINARY_BIN" ./cmd/luminary 2>"$OUT/luminary-build.log"; then
		OURS=1
	else
		log "cmd/luminary does not build; skipping our relay (see $OUT/luminary-build.log)"
	fi
fi
GUN=0
if [ "$SKIP_GUN" != 1 ]; then
	if command -v node >/dev/null && node -e "require.resolve('gun')" 2>/dev/null; then
		GUN=1
	else
		log "node or gun is missing (npm ci at the repository root); skipping the gun.js relay"
	fi
fi
if [ "$GUN" = 0 ] && [ "$OURS" = 0 ]; then
	log "no relay to measure"
	exit 1
fi

# The admin key that hosts worlds on our relay (signed POST /api/worlds).
ADMIN_PUB=$("$LOAD" newkey --out "$TMP/admin.key")

RELAY_PID=
TIMEOUT_PID=
RELAY_URL=
N=0

# start_relay KIND [extra serve flags...]: a fresh relay; sets RELAY_PID, RELAY_URL.
start_relay() {
	local kind=$1 port logf
	shift
	N=$((N + 1))
	port=$("$LOAD" freeport)
	logf="$OUT/relay-$kind-$N.log"
	# Every relay also runs under timeout(1), so that nothing outlives a
	# killed script for long; RELAY_PID is the relay itself (timeout's
	# child), whose /proc CPU the tool reads.
	case $kind in
	gun)
		timeout --kill-after=5 "$RELAY_MAX" node bench/gunrelay.mjs --port "$port" --dir "$TMP/gun-$N" >"$logf" 2>&1 &
		;;
	ours)
		mkdir -p "$TMP/lum-$N"
		# shellcheck disable=SC2086
		timeout --kill-after=5 "$RELAY_MAX" "$LUMINARY_BIN" serve --addr "127.0.0.1:$port" --data "$TMP/lum-$N" \
			--admins "$ADMIN_PUB" "$@" $LUMINARY_FLAGS >"$logf" 2>&1 &
		;;
	esac
	TIMEOUT_PID=$!
	PIDS+=("$TIMEOUT_PID")
	RELAY_PID=
	local i
	for i in $(seq 1 100); do
		RELAY_PID=$(pgrep -P "$TIMEOUT_PID" | head -1 || true)
		[ -n "$RELAY_PID" ] && break
		sleep 0.05
	done
	RELAY_URL="http://127.0.0.1:$port/gun"
	if ! "$LOAD" wait --url "$RELAY_URL" --timeout 30s --pid "${RELAY_PID:-0}"; then
		log "$kind relay did not come up; log follows"
		tail -20 "$logf" >&2
		stop_relay
		return 1
	fi
}

# wait_terms N: wait (up to 120 s) until our relay has started the
# sequencer term of N worlds ("heartbeat: acquired instance" in its log),
# so that followers subscribe to worlds that tick rather than to a relay
# still busy starting them.
wait_terms() {
	local want=$1 logf="$OUT/relay-ours-$N.log" got=0 i
	for i in $(seq 1 240); do
		got=$(grep -c "acquired instance" "$logf" || true)
		[ "$got" -ge "$want" ] && break
		sleep 0.5
	done
	log "$got of $want world terms started"
}

stop_relay() {
	if [ -n "$TIMEOUT_PID" ]; then
		kill "$TIMEOUT_PID" 2>/dev/null || true # timeout passes SIGTERM on to the relay
		wait "$TIMEOUT_PID" 2>/dev/null || true
		TIMEOUT_PID=
		RELAY_PID=
	fi
	# Flush what the stopped relay left in the page cache (gun.js's RAD
	# writes hundreds of thousands of files at 1,000 worlds), so that its
	# writeback does not run during the next relay's measurement.
	sync
}

# run NAME CMD...: a bounded run; failures are logged, not fatal.
run() {
	local name=$1
	shift
	log "$name (load1 $(load1))"
	local rc=0
	timeout "$RUN_TIMEOUT" "$@" || rc=$?
	[ "$rc" = 0 ] || log "$name failed (exit $rc)"
	return "$rc"
}

{
	echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)  set: $SET  load1 at start: $(load1)"
	echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r)"
	echo "go: $(go version | cut -d' ' -f3)  node: $(node --version 2>/dev/null || echo none)  gun: $(node -p "require('gun/package.json').version" 2>/dev/null || echo none)"
	echo "gun.js relay: bench/gunrelay.mjs axe:false multicast:false radisk:on (SEA loaded)"
	echo "luminary relay: serve --data DIR --admins KEY ${LUMINARY_FLAGS}"
} | tee "$OUT/env.txt"

# ticks_ours N LABEL [serve flags...]: our relay hosting N worlds it ticks.
ticks_ours() {
	local n=$1 label=$2
	shift 2
	start_relay ours --max-worlds "$((n + 10))" "$@" || return 0
	if run "create $n worlds ($label)" "$LOAD" worlds --url "$RELAY_URL" --count "$n" --admin-key "$TMP/admin.key" \
		--concurrency 4 --out "$OUT/worlds-$n-$label.txt" --json "$OUT/worlds-$n-$label.json"; then
		wait_terms "$n"
		run "ticks $label N=$n" "$LOAD" ticks --kind luminary --url "$RELAY_URL" --label "$label" --relay-pid "${RELAY_PID:-0}" \
			--worlds-file "$OUT/worlds-$n-$label.txt" --followers "$TICKS_FOLLOWERS" --souls-per-conn "$TICKS_SOULS_PER_CONN" \
			--warmup "$TICKS_WARMUP" --duration "$TICKS_DURATION" --json "$OUT/ticks-$n-$label.json" || true
	fi
	stop_relay
}

ticks() {
	local n
	for n in $TICKS_N; do
		if [ "$GUN" = 1 ] && start_relay gun; then
			run "ticks gun.js N=$n" "$LOAD" ticks --kind gun --url "$RELAY_URL" --label gun.js --relay-pid "${RELAY_PID:-0}" \
				--instances "$n" --followers "$TICKS_FOLLOWERS" --souls-per-conn "$TICKS_SOULS_PER_CONN" \
				--warmup "$TICKS_WARMUP" --duration "$TICKS_DURATION" --json "$OUT/ticks-$n-gun.json" || true
			stop_relay
		fi
		if [ "$OURS" = 1 ]; then
			ticks_ours "$n" luminary
			if [ "$TICKS_MEMORY" = 1 ] && [ "$n" -ge 250 ]; then
				ticks_ours "$n" luminary-memory --memory
			fi
		fi
	done
	return 0
}

messages() {
	if [ "$GUN" = 1 ]; then
		start_relay gun && {
			run "messages gun.js" "$LOAD" messages --kind gun --url "$RELAY_URL" --label gun.js --relay-pid "${RELAY_PID:-0}" \
				--clients "$MSG_CLIENTS" --rates "$MSG_RATES" --step "$MSG_STEP" --drain "$MSG_DRAIN" \
				--json "$OUT/messages-gun.json" || true
			stop_relay
		}
	fi
	if [ "$OURS" = 1 ]; then
		start_relay ours && {
			if run "create the world" "$LOAD" worlds --url "$RELAY_URL" --count 1 --admin-key "$TMP/admin.key" \
				--message-cert --out "$OUT/messages-world.txt"; then
				run "messages luminary" "$LOAD" messages --kind luminary --url "$RELAY_URL" --label luminary --relay-pid "${RELAY_PID:-0}" \
					--instance "$(head -1 "$OUT/messages-world.txt")" --curve "$MSG_CURVE" \
					--clients "$MSG_CLIENTS" --rates "$MSG_RATES" --step "$MSG_STEP" --drain "$MSG_DRAIN" \
					--json "$OUT/messages-ours.json" || true
			fi
			stop_relay
		}
	fi
}

signed() {
	local sc writers window
	run "verify p256" "$LOAD" verify --curve p256 --duration "$VERIFY_BENCH" --json "$OUT/verify-p256.json" || true
	run "verify secp256k1" "$LOAD" verify --curve secp256k1 --duration "$VERIFY_BENCH" --json "$OUT/verify-secp256k1.json" || true
	for sc in $SIGNED_SCENARIOS; do
		writers=${sc%x*}
		window=${sc#*x}
		if [ "$OURS" = 1 ]; then
			start_relay ours && {
				run "signed SEA puts, luminary (secure), ${writers}x$window" "$LOAD" puts --url "$RELAY_URL" --label luminary-sea \
					--relay-pid "${RELAY_PID:-0}" --writers "$writers" --window "$window" --duration "$SIGNED_DURATION" \
					--signed sea --users "$SIGNED_USERS" --presign "$SIGNED_PRESIGN" --verify-bench "$VERIFY_BENCH" \
					--json "$OUT/signed-${writers}x$window-ours-sea.json" || true
				stop_relay
			}
			start_relay ours --auth-mode open && {
				run "unsigned puts, luminary (open), ${writers}x$window" "$LOAD" puts --url "$RELAY_URL" --label luminary-open \
					--relay-pid "${RELAY_PID:-0}" --writers "$writers" --window "$window" --duration "$SIGNED_DURATION" \
					--json "$OUT/signed-${writers}x$window-ours-open.json" || true
				stop_relay
			}
		fi
		if [ "$GUN" = 1 ]; then
			start_relay gun && {
				run "signed SEA puts, gun.js, ${writers}x$window" "$LOAD" puts --url "$RELAY_URL" --label gun.js-sea \
					--relay-pid "${RELAY_PID:-0}" --writers "$writers" --window "$window" --duration "$SIGNED_DURATION" \
					--signed sea --users "$SIGNED_USERS" --presign "$SIGNED_PRESIGN" \
					--json "$OUT/signed-${writers}x$window-gun-sea.json" || true
				stop_relay
			}
		fi
	done
}

case $SET in
ticks) ticks || true ;;
messages) messages || true ;;
signed) signed || true ;;
all)
	ticks || true
	messages || true
	signed || true
	;;
esac

echo
shopt -s nullglob
results=()
for f in "$OUT"/ticks-*.json "$OUT"/messages-*.json "$OUT"/signed-*.json "$OUT"/verify-*.json; do
	results+=("$f")
done
if [ ${#results[@]} -eq 0 ]; then
	log "no results"
	exit 1
fi
"$LOAD" report "${results[@]}" | tee "$OUT/report.txt"
echo "load1 at end: $(load1)" | tee -a "$OUT/report.txt"
echo "results: $OUT"
