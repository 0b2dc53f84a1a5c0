#!/usr/bin/env bash
# Authenticated REGISTER throughput of herald, measured with sipload on this machine.
#
# Builds herald and sipload in release, creates a throwaway data folder with USERS users, and for
# each rate in RATES runs sipload RUNS times against `herald serve` on loopback, then prints the
# median of each figure per rate. By default every run gets a freshly started herald, so runs are
# independent (a server transaction lives 32 s after its answer, Timer J, and would otherwise
# carry over into the next run). Everything it starts it stops, it removes its folder, and every
# step is bounded in time. See bench/README.md for what the figures mean.
#
# Settings (environment):
#   RATES="5000 10000 15000 20000 25000 30000"  offered registrations per second
#   RUNS=3           runs per rate (the median is reported)
#   DURATION=10s     sending time of each run
#   USERS=1000       simulated clients / directory users
#   THREADS=1        sipload worker threads (it shares the 2 cores with herald)
#   SIPLOAD_ARGS=    more sipload options, e.g. "--reuse-nonce" or "--no-retransmit --timeout 1s"
#   RESTART=1        start a fresh herald for every run; 0: one herald for all runs
#   SIP_PORT=15060 ADMIN_PORT=19060 LOCAL_PORT=25060   loopback ports used
#   SKIP_BUILD=1     use the binaries already in the target folder
#   VERBOSE=1        print sipload's whole table for every run, and herald's log at the end
set -euo pipefail
cd "$(dirname "$0")/.."

RATES=${RATES:-"5000 10000 15000 20000 25000 30000"}
RUNS=${RUNS:-3}
DURATION=${DURATION:-10s}
USERS=${USERS:-1000}
THREADS=${THREADS:-1}
SIPLOAD_ARGS=${SIPLOAD_ARGS:-}
RESTART=${RESTART:-1}
SIP_PORT=${SIP_PORT:-15060}
ADMIN_PORT=${ADMIN_PORT:-19060}
LOCAL_PORT=${LOCAL_PORT:-25060}
DOMAIN=herald.test

target=${CARGO_TARGET_DIR:-target}
herald=$target/release/herald
sipload=$target/release/sipload
if [[ -z ${SKIP_BUILD:-} ]]; then
    timeout 1800 cargo build --release -p herald -p sipload
fi

work=$(mktemp -d -t herald-bench.XXXXXX)
: >"$work/herald.log"
herald_pid=

# Starts herald in the background and waits (at most 30 s) until it listens.
start_herald() {
    "$herald" --config "$config" serve >>"$work/herald.log" 2>&1 &
    herald_pid=$!
    local i listening
    for ((i = 0; ; i++)); do
        if ! kill -0 "$herald_pid" 2>/dev/null; then
            echo "herald exited at start:" >&2
            tail -n 30 "$work/herald.log" >&2
            exit 1
        fi
        listening=$(grep -c '^listening admin' "$work/herald.log" || true)
        ((listening > starts)) && break
        if ((i >= 300)); then
            echo "herald did not start listening within 30 s" >&2
            tail -n 30 "$work/herald.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    starts=$((starts + 1))
}

# Stops the herald this script started: TERM, then KILL after 5 s.
stop_herald() {
    if [[ -n $herald_pid ]] && kill -0 "$herald_pid" 2>/dev/null; then
        kill -TERM "$herald_pid" 2>/dev/null || true
        local i
        for ((i = 0; i < 50; i++)); do
            kill -0 "$herald_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$herald_pid" 2>/dev/null || true
        wait "$herald_pid" 2>/dev/null || true
    fi
    herald_pid=
}

cleanup() {
    stop_herald
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

config=$work/herald.toml
cat >"$config" <<EOF
data_dir = "$work/data"

[sip]
domain = "$DOMAIN"
udp = ["127.0.0.1:$SIP_PORT"]
tcp = []
tls = []

[dns]
listen = []

[http]
admin = "127.0.0.1:$ADMIN_PORT"
web = []
web_tls = []

[log]
filter = "warn"
EOF
# One password for every load user, kept out of argv.
password=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
printf '%s\n' "$password" >"$work/password"

echo "== adding $USERS users"
timeout 60 "$herald" --config "$config" domain add "$DOMAIN" >/dev/null
if "$herald" --config "$config" user --help | grep -q '^  import'; then
    for ((n = 0; n < USERS; n++)); do
        printf 'load%d@%s,%s\n' "$n" "$DOMAIN" "$password"
    done >"$work/users.csv"
    timeout 300 "$herald" --config "$config" user import "$work/users.csv" >/dev/null
else
    for ((n = 0; n < USERS; n++)); do
        printf '%s\n' "$password" |
            timeout 30 "$herald" --config "$config" user add "load$n@$DOMAIN" --password-stdin >/dev/null
    done
fi

# CPU ticks (1/100 s) the running herald has used.
herald_ticks() {
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$herald_pid/stat"
}

# The median of the numbers on standard input.
median() {
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# The value of key=value field $2 in RESULT line $1.
field() {
    tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"
}

# sipload stops by itself after DURATION and its drain; this is only a backstop.
run_timeout=$(awk -v d="$DURATION" 'BEGIN {
    n = d + 0; if (d ~ /ms$/) n /= 1000; else if (d ~ /m$/) n *= 60; printf "%d", n + 120 }')
starts=0
summary=$work/summary
: >"$summary"
((RESTART)) || start_herald
echo "== $RUNS run(s) of $DURATION per rate against herald on udp 127.0.0.1:$SIP_PORT" \
    "($( ((RESTART)) && echo "fresh herald per run" || echo "one herald for all runs"))"
echo "   sipload: $USERS users, $THREADS thread(s) $SIPLOAD_ARGS"
echo "   machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) before the runs"
for rate in $RATES; do
    : >"$work/runs"
    for ((run = 1; run <= RUNS; run++)); do
        ((RESTART)) && start_herald
        before=$(herald_ticks)
        start=$(date +%s%N)
        # shellcheck disable=SC2086 # SIPLOAD_ARGS is a list of options
        out=$(timeout "$run_timeout" "$sipload" register --server "127.0.0.1:$SIP_PORT" \
            --domain "$DOMAIN" --users "$USERS" --password-file "$work/password" \
            --rate "$rate" --duration "$DURATION" --threads "$THREADS" \
            --local-port "$LOCAL_PORT" $SIPLOAD_ARGS) || {
            echo "sipload failed at rate $rate:" >&2
            printf '%s\n' "$out" >&2
            exit 1
        }
        herald_cpu=$(awk -v t="$(($(herald_ticks) - before))" -v ns="$(($(date +%s%N) - start))" \
            'BEGIN { printf "%.0f", t / 100 / (ns / 1e9) * 100 }')
        ((RESTART)) && stop_herald
        if [[ -n ${VERBOSE:-} ]]; then
            printf '%s\n' "$out"
        fi
        result=$(grep '^RESULT register ' <<<"$out")
        printf '%s herald_cpu=%s\n' "$result" "$herald_cpu" >>"$work/runs"
        printf '   rate %6s run %d: %s herald_cpu=%s%%\n' "$rate" "$run" "${result#RESULT register }" "$herald_cpu"
    done
    row=$rate
    for key in rate p50_us p99_us max_us failures timeouts not_started herald_cpu gen_cpu; do
        row+=" $(while read -r line; do field "$line" "$key"; done <"$work/runs" | median)"
    done
    echo "$row" >>"$summary"
done
stop_herald

echo
echo "== medians of $RUNS run(s) per offered rate (latency: authenticated REGISTER → 200)"
{
    echo "offered/s completed/s p50_µs p99_µs max_µs failures timeouts not_started herald_cpu_% sipload_cpu"
    cat "$summary"
} | awk '{ printf "%9s %11s %8s %8s %9s %8s %8s %11s %12s %11s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 }'
echo "   load average after the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ -n ${VERBOSE:-} ]]; then
    echo "== herald's log (last 50 lines)"
    tail -n 50 "$work/herald.log"
fi
