#!/usr/bin/env bash
# Throughput and added latency of herald's mailbox-anchoring proxy, measured with wrk against
# the same demo mailbox server three ways in one run: directly, through `herald serve`
# ([anchor]), and through nginx as a plain reverse proxy (keep-alive upstream pool).
#
# Builds herald in release, makes a throwaway data folder (one mailbox server, one database, one
# user with a mailbox), starts `herald mailbox-server`, `herald serve` and nginx on loopback, and
# for each of RUNS rounds runs wrk against the three targets in turn (interleaved, so drift hits
# all three alike): a throughput pass (CONNECTIONS connections) and a latency pass (one
# connection, one request at a time). It prints the median of the rounds for each figure. Every
# request names its mailbox with X-AnchorMailbox, so herald does its whole routing work (parse
# the hint, look the mailbox up, ask Active Manager, add the diagnostic headers).
#
# Besides requests/s it reports the CPU time each request cost the proxy (herald serve, or
# nginx's master and workers) and the backend during the throughput pass (utime + stime from
# /proc, over the requests wrk completed). On a machine shared with other work, requests/s
# swing with the load while CPU per request moves much less, so the two together say whether
# a difference is the proxy's or the machine's.
#
# Needs wrk and nginx (Debian `wrk`, `nginx-light`); installs them with apt-get when missing and
# run as root. Everything it starts it stops, it removes its folder, every step is bounded in
# time.
#
# Settings (environment):
#   RUNS=3            rounds (the median is reported)
#   DURATION=10s      length of each throughput pass
#   LAT_DURATION=5s   length of each latency pass
#   CONNECTIONS=64    connections of the throughput pass
#   THREADS=1         wrk threads (the machine's cores are shared with the servers)
#   BACKEND_PORT=18081 HERALD_PORT=18080 NGINX_PORT=18082   loopback ports used
#   SKIP_BUILD=1      use the herald already in the target folder
#   HERALD_BIN=PATH   use this herald binary (no build), e.g. to compare two builds
#   VERBOSE=1         print wrk's whole output for every pass
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
DURATION=${DURATION:-10s}
LAT_DURATION=${LAT_DURATION:-5s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-1}
BACKEND_PORT=${BACKEND_PORT:-18081}
HERALD_PORT=${HERALD_PORT:-18080}
NGINX_PORT=${NGINX_PORT:-18082}
DOMAIN=herald.test
USER_ADDR=bench@$DOMAIN
PATH_UNDER_TEST=/ews/exchange.asmx

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || need+=(nginx-light)
if ((${#need[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "missing ${need[*]}; install them (apt-get install ${need[*]}) or run as root" >&2
        exit 1
    fi
    timeout 600 apt-get update -qq
    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq --no-install-recommends \
        "${need[@]}" >/dev/null
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

target=${CARGO_TARGET_DIR:-target}
herald=${HERALD_BIN:-$target/release/herald}
if [[ -z ${SKIP_BUILD:-} && -z ${HERALD_BIN:-} ]]; then
    timeout 1800 cargo build --release -p herald
fi

work=$(mktemp -d -t herald-anchor-bench.XXXXXX)
pids=()

# Stops everything this script started (TERM, then KILL after 5 s) and removes its folder.
cleanup() {
    local pid i
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ -n ${VERBOSE:-} && -f $work/serve.log ]]; then
        echo "--- herald serve log ---"
        tail -n 50 "$work/serve.log"
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits (at most 30 s) until LOG has a line matching PATTERN while PID runs.
wait_for() {
    local pid=$1 log=$2 pattern=$3 i
    for ((i = 0; i < 300; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "process $pid exited at start:" >&2
            tail -n 30 "$log" >&2
            exit 1
        fi
        grep -q "$pattern" "$log" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "no '$pattern' in $log within 30 s" >&2
    tail -n 30 "$log" >&2
    exit 1
}

config=$work/herald.toml
cat >"$config" <<EOF
data_dir = "data"

[sip]
domain = "$DOMAIN"
udp = ["127.0.0.1:0"]
tcp = []
tls = []

[dns]
listen = []

[http]
admin = "127.0.0.1:0"
web = []
web_tls = []

[log]
filter = "warn"

[anchor]
listen = ["127.0.0.1:$HERALD_PORT"]
frontend_name = "bench-fe"
probe_interval_ms = 1000
EOF

h() { timeout 60 "$herald" --config "$config" "$@" >/dev/null; }

"$herald" mailbox-server --name ex1 --build 15.0.1156.6 --listen "127.0.0.1:$BACKEND_PORT" \
    >"$work/backend.log" 2>&1 &
pids+=($!)
wait_for "${pids[-1]}" "$work/backend.log" '^ready'

h domain add "$DOMAIN"
echo "bench-password" | h user add "$USER_ADDR" --password-stdin
h server add ex1 --address "127.0.0.1:$BACKEND_PORT" --build 15.0.1156.6
h database add db1 --copies ex1:1
h mailbox add "$USER_ADDR" --database db1

"$herald" --config "$config" serve >"$work/serve.log" 2>&1 &
pids+=($!)
wait_for "${pids[-1]}" "$work/serve.log" '^ready'

mkdir -p "$work/nginx"
cat >"$work/nginx.conf" <<EOF
daemon off;
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    upstream mailbox { server 127.0.0.1:$BACKEND_PORT; keepalive 128; }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / {
            proxy_pass http://mailbox;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
"$nginx_bin" -p "$work/nginx" -c "$work/nginx.conf" >"$work/nginx/stdout.log" 2>&1 &
pids+=($!)
for ((i = 0; i < 100; i++)); do
    curl -fsS -o /dev/null "http://127.0.0.1:$NGINX_PORT/_herald/health" 2>/dev/null && break
    kill -0 "${pids[-1]}" 2>/dev/null || { cat "$work/nginx/error.log" >&2; exit 1; }
    sleep 0.1
done

declare -A url=(
    [direct]="http://127.0.0.1:$BACKEND_PORT$PATH_UNDER_TEST"
    [herald]="http://127.0.0.1:$HERALD_PORT$PATH_UNDER_TEST"
    [nginx]="http://127.0.0.1:$NGINX_PORT$PATH_UNDER_TEST"
)
targets=(direct herald nginx)

# Every target must answer 200 from the mailbox server before anything is measured.
for t in "${targets[@]}"; do
    body=$(curl -fsS --max-time 5 -H "X-AnchorMailbox: $USER_ADDR" "${url[$t]}") || {
        echo "$t: ${url[$t]} does not answer" >&2
        exit 1
    }
    [[ $body == *'"server":"ex1"'* ]] || { echo "$t: unexpected answer $body" >&2; exit 1; }
done
echo "herald routes: $(curl -sS -o /dev/null -D - -H "X-AnchorMailbox: $USER_ADDR" \
    "${url[herald]}" | tr -d '\r' | grep -i '^x-herald-anchor\|^x-beserver' | tr '\n' ' ')"

# wrk's latency figure in microseconds ("1.23ms" -> 1230).
to_us() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") f = 1; else if (u == "ms") f = 1000; else if (u == "s") f = 1000000; else f = 1
        printf "%.0f", n * f }'
}

# CPU ticks (utime + stime, 1/CLK_TCK s) used so far by the given processes.
cpu_ticks() {
    local pid sum=0 t
    for pid in "$@"; do
        # Fields after the parenthesised command name: utime and stime are the 12th and 13th.
        t=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{print $12 + $13}') || t=0
        sum=$((sum + ${t:-0}))
    done
    echo "$sum"
}
clk_tck=$(getconf CLK_TCK)
backend_pid=${pids[0]}
herald_pid=${pids[1]}
nginx_pid=${pids[2]}
# The processes doing a target's proxying (none for direct).
proxy_pids() {
    case $1 in
        herald) echo "$herald_pid" ;;
        nginx) echo "$nginx_pid $(pgrep -P "$nginx_pid" | tr '\n' ' ')" ;;
        *) echo "" ;;
    esac
}

# run_wrk NAME CONNECTIONS DURATION -> "rps p50_us p99_us proxy_cpu_us_per_req backend_cpu_us_per_req"
run_wrk() {
    local name=$1 conns=$2 duration=$3 out proxy before_p before_b after_p after_b
    # shellcheck disable=SC2207
    proxy=($(proxy_pids "$name"))
    before_p=$(cpu_ticks "${proxy[@]}")
    before_b=$(cpu_ticks "$backend_pid")
    out=$(timeout 120 wrk -t "$THREADS" -c "$conns" -d "$duration" --latency \
        -H "X-AnchorMailbox: $USER_ADDR" "${url[$name]}")
    after_p=$(cpu_ticks "${proxy[@]}")
    after_b=$(cpu_ticks "$backend_pid")
    [[ -n ${VERBOSE:-} ]] && echo "$out" >&2
    if grep -q 'Non-2xx' <<<"$out"; then
        echo "$name: wrk saw non-2xx answers:" >&2
        echo "$out" >&2
        exit 1
    fi
    local rps p50 p99 n cpu_p cpu_b
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    p50=$(to_us "$(awk '$1 == "50%" {print $2}' <<<"$out")")
    p99=$(to_us "$(awk '$1 == "99%" {print $2}' <<<"$out")")
    n=$(awk '/ requests in / {print $1}' <<<"$out")
    cpu_p=$(awk -v t=$((after_p - before_p)) -v n="$n" -v hz="$clk_tck" \
        'BEGIN {printf "%.1f", (n > 0 ? t * 1e6 / hz / n : 0)}')
    cpu_b=$(awk -v t=$((after_b - before_b)) -v n="$n" -v hz="$clk_tck" \
        'BEGIN {printf "%.1f", (n > 0 ? t * 1e6 / hz / n : 0)}')
    echo "$rps $p50 $p99 $cpu_p $cpu_b"
}

declare -A tput lat50 lat99 tp50 pcpu bcpu
for ((r = 1; r <= RUNS; r++)); do
    for t in "${targets[@]}"; do
        res=$(run_wrk "$t" "$CONNECTIONS" "$DURATION")
        read -r rps loaded_p50 _ proxy_cpu backend_cpu <<<"$res"
        tput[$t]+="$rps "
        tp50[$t]+="$loaded_p50 "
        pcpu[$t]+="$proxy_cpu "
        bcpu[$t]+="$backend_cpu "
        res=$(run_wrk "$t" 1 "$LAT_DURATION")
        read -r _ p50 p99 _ _ <<<"$res"
        lat50[$t]+="$p50 "
        lat99[$t]+="$p99 "
        printf 'round %d %-6s %10.0f req/s (p50 %6d us at %d conns; CPU/req proxy %5.1f us, backend %5.1f us) | 1 conn: p50 %5d us p99 %5d us\n' \
            "$r" "$t" "$rps" "$loaded_p50" "$CONNECTIONS" "$proxy_cpu" "$backend_cpu" "$p50" "$p99" >&2
    done
done

median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

echo
echo "medians of $RUNS rounds; throughput: wrk -t$THREADS -c$CONNECTIONS -d$DURATION; latency: -c1 -d$LAT_DURATION"
printf '%-8s %10s %10s %10s %14s %14s %14s %14s %14s %16s\n' target "req/s" "vs direct" \
    "vs nginx" "loaded p50 us" "1-conn p50 us" "1-conn p99 us" "added p50 us" "proxy CPU/req" \
    "backend CPU/req"
direct_rps=$(median "${tput[direct]}")
nginx_rps=$(median "${tput[nginx]}")
direct_p50=$(median "${lat50[direct]}")
for t in "${targets[@]}"; do
    rps=$(median "${tput[$t]}")
    loaded=$(median "${tp50[$t]}")
    p50=$(median "${lat50[$t]}")
    p99=$(median "${lat99[$t]}")
    printf '%-8s %10.0f %9.1f%% %9.1f%% %14d %14d %14d %14d %11.1f us %13.1f us\n' "$t" "$rps" \
        "$(awk -v a="$rps" -v b="$direct_rps" 'BEGIN {print (a / b - 1) * 100}')" \
        "$(awk -v a="$rps" -v b="$nginx_rps" 'BEGIN {print (a / b - 1) * 100}')" \
        "$loaded" "$p50" "$p99" "$((p50 - direct_p50))" "$(median "${pcpu[$t]}")" \
        "$(median "${bcpu[$t]}")"
done
