#!/usr/bin/env bash
# Side-by-side wire benchmark: a stock gun.js relay versus the Luminary relay,
# both driven over Gun's wire protocol by cmd/luminary-load.
#
#   bash bench/wire.sh            # everything, about 3-4 minutes on 2 cores
#
# Builds the load tool and (if it builds) ./cmd/luminary, then for each
# scenario starts a FRESH relay of each kind on a free 127.0.0.1 port, runs the
# scenario against it, stops it, and finally prints a comparison table.
# Results (JSON per run, relay logs, report.txt) go to bench/out/<stamp>/.
# Everything this script starts is killed on exit.
#
# Knobs (environment):
#   PUTS_SCENARIOS="8x64 8x625 1x5000"   writers x window per writer
#   PUTS_DURATION=10s  PUTS_WARMUP=1s
#   FAN_SUBS=50  FAN_RATES=200,500,1000,2000,5000,10000  FAN_STEP=3s  FAN_DRAIN=3s
#   RUN_TIMEOUT=90        seconds; hard bound for each single run
#   GUN_RADISK=1          0 runs the gun.js relay with radisk:false (it never acks then)
#   SKIP_GUN=1 / SKIP_OURS=1
#   LUMINARY_FLAGS="--auth-mode open"  flags for `luminary serve` (default: open mode, since
#                         the load tool writes plain Gun souls that secure mode refuses)
#   LUMINARY_BIN=path     use this relay binary instead of building ./cmd/luminary
#
# The gun.js relay runs with axe:false: with AXE on (gun's default) raw
# subscribers of a soul get only a fraction of the puts, which would make the
# fan-out comparison meaningless. Without AXE gun floods every put to every
# peer, so in the puts scenario each writer also receives the other writers'
# puts (counted as "other frames" in the JSON).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

PUTS_SCENARIOS=${PUTS_SCENARIOS:-"8x64 8x625 1x5000"}
PUTS_DURATION=${PUTS_DURATION:-10s}
PUTS_WARMUP=${PUTS_WARMUP:-1s}
FAN_SUBS=${FAN_SUBS:-50}
FAN_RATES=${FAN_RATES:-200,500,1000,2000,5000,10000}
FAN_STEP=${FAN_STEP:-3s}
FAN_DRAIN=${FAN_DRAIN:-3s}
RUN_TIMEOUT=${RUN_TIMEOUT:-90}
GUN_RADISK=${GUN_RADISK:-1}
SKIP_GUN=${SKIP_GUN:-0}
SKIP_OURS=${SKIP_OURS:-0}
LUMINARY_FLAGS=${LUMINARY_FLAGS---auth-mode open}  # plain Gun puts, as a stock relay takes them

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_init "" luminary-wire

OURS=0
LUMINARY_BIN=${LUMINARY_BIN:-}
if [ "$SKIP_OURS" != 1 ] && [ -n "$LUMINARY_BIN" ]; then
	[ -x "$LUMINARY_BIN" ] && OURS=1 || log "LUMINARY_BIN=$LUMINARY_BIN is not executable; skipping our relay"
elif [ "$SKIP_OURS" != 1 ]; then
	LUMINARY_BIN="$BIN/luminary"
	log "building cmd/luminary"
	if go build -o "$BIN/luminary" ./cmd/luminary 2>"$OUT/luminary-build.log"; then
		OURS=1
	else
		log "cmd/luminary does not build; skipping our relay (see $OUT/luminary-build.log)"
	fi
fi

GUN=0
if [ "$SKIP_GUN" != 1 ]; then
	if ! command -v node >/dev/null; then
		log "node not found; skipping the gun.js relay"
	else
		if ! node -e "require.resolve('gun')" 2>/dev/null && [ -f package.json ]; then
			log "node_modules lacks gun; running npm install"
			timeout 300 npm install --no-audit --no-fund >"$OUT/npm-install.log" 2>&1 || true
		fi
		if node -e "require.resolve('gun')" 2>/dev/null || [ -n "${GUN_DIR:-}" ]; then
			GUN=1
		else
			log "gun is not installed; skipping the gun.js relay"
		fi
	fi
fi
if [ "$GUN" = 0 ] && [ "$OURS" = 0 ]; then
	log "no relay to measure"
	exit 1
fi

RELAY_PID=
RELAY_URL=
N=0

# start_relay KIND: starts a fresh relay, sets RELAY_PID and RELAY_URL.
start_relay() {
	local kind=$1 port logf
	N=$((N + 1))
	port=$("$LOAD" freeport)
	logf="$OUT/relay-$kind-$N.log"
	case $kind in
	gun)
		local extra=()
		[ "$GUN_RADISK" = 1 ] || extra+=(--no-radisk)
		node bench/gunrelay.mjs --port "$port" --dir "$TMP/gun-$N" "${extra[@]}" >"$logf" 2>&1 &
		;;
	ours)
		mkdir -p "$TMP/lum-$N"
		# shellcheck disable=SC2086
		"$LUMINARY_BIN" serve --addr "127.0.0.1:$port" --data "$TMP/lum-$N" $LUMINARY_FLAGS >"$logf" 2>&1 &
		;;
	esac
	RELAY_PID=$!
	PIDS+=("$RELAY_PID")
	RELAY_URL="http://127.0.0.1:$port/gun"
	if ! "$LOAD" wait --url "$RELAY_URL" --timeout 20s --pid "$RELAY_PID"; then
		log "$kind relay did not come up; log follows"
		tail -20 "$logf" >&2
		stop_relay
		return 1
	fi
}

stop_relay() {
	if [ -n "$RELAY_PID" ]; then
		kill "$RELAY_PID" 2>/dev/null || true
		wait "$RELAY_PID" 2>/dev/null || true
		RELAY_PID=
	fi
	sync # the stopped relay's writeback must not run during the next measurement
}

label() { [ "$1" = gun ] && echo gun.js || echo luminary; }

kinds=()
[ "$GUN" = 1 ] && kinds+=(gun)
[ "$OURS" = 1 ] && kinds+=(ours)

{
	echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)  cores: $(nproc)  load1 at start: $(load1)"
	echo "go: $(go version | cut -d' ' -f3)  node: $(node --version 2>/dev/null || echo none)"
	echo "gun.js relay: axe:false multicast:false radisk:$([ "$GUN_RADISK" = 1 ] && echo on || echo off)"
} | tee "$OUT/env.txt"

for sc in $PUTS_SCENARIOS; do
	writers=${sc%x*}
	window=${sc#*x}
	for kind in "${kinds[@]}"; do
		log "puts: $(label "$kind"), $writers writers x window $window"
		start_relay "$kind" || continue
		timeout "$RUN_TIMEOUT" "$LOAD" puts --url "$RELAY_URL" --label "$(label "$kind")" \
			--relay-pid "$RELAY_PID" --writers "$writers" --window "$window" \
			--warmup "$PUTS_WARMUP" --duration "$PUTS_DURATION" \
			--json "$OUT/puts-${writers}x$window-$kind.json" || log "puts run failed (exit $?)"
		stop_relay
	done
done

for kind in "${kinds[@]}"; do
	log "fanout: $(label "$kind"), $FAN_SUBS subscribers, rates $FAN_RATES"
	start_relay "$kind" || continue
	timeout "$RUN_TIMEOUT" "$LOAD" fanout --url "$RELAY_URL" --label "$(label "$kind")" \
		--relay-pid "$RELAY_PID" --subs "$FAN_SUBS" --rates "$FAN_RATES" \
		--step "$FAN_STEP" --drain "$FAN_DRAIN" \
		--json "$OUT/fanout-$kind.json" || log "fanout run failed (exit $?)"
	stop_relay
done

echo
shopt -s nullglob
results=("$OUT"/*.json)
if [ ${#results[@]} -eq 0 ]; then
	log "no results"
	exit 1
fi
"$LOAD" report "${results[@]}" | tee "$OUT/report.txt"
echo "load1 at end: $(load1)" | tee -a "$OUT/report.txt"
[ "$OURS" = 1 ] || echo "NOTE: our relay was not measured (cmd/luminary did not build or SKIP_OURS=1)." | tee -a "$OUT/report.txt"
echo "results: $OUT"
