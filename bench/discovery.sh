#!/usr/bin/env bash
# Discovery throughput of herald on this machine: authoritative DNS queries/s with dnsperf and
# autodiscover requests/s with wrk, against `herald serve` on loopback; BIND's `named` serving the
# same two views from `herald dns records --format zone` is measured in the same run as a
# comparator.
#
# Builds herald in release, writes a throwaway config (a two-server pool, an Edge, a reverse
# proxy; 127.0.0.2 is the only inside client network), starts herald, and for each view runs
# dnsperf RUNS times from a source address of that view with a query file of that view's A and
# SRV names (every query answers NOERROR), then wrk RUNS times against the autodiscover root and
# user resources. Prints the median of each figure and the herald/named ratios. Everything it
# starts it stops, it removes its folder, and every step is bounded in time. See bench/README.md
# ("Discovery") for what the figures mean and the results.
#
# Settings (environment):
#   RUNS=3            runs per measurement (the median is reported)
#   DURATION=10       seconds of each dnsperf and wrk run
#   CLIENTS=16        dnsperf clients (UDP sockets)
#   OUTSTANDING=1000  dnsperf queries in flight
#   DNSPERF_THREADS=2 dnsperf threads (it shares the 2 cores with the server)
#   WRK_THREADS=1 WRK_CONNECTIONS=32   wrk settings
#   COMPARATOR=named  `named` (Debian bind9) serving the same views; `none` to skip it
#   NAMED_PORT=18053  loopback port of the comparator
#   SKIP_BUILD=1      use the herald already in the target folder
#   INSTALL=0         do not apt-get install missing tools (dnsperf, wrk, bind9), fail instead
#   VERBOSE=1         print every tool's whole output, and herald's log at the end
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
CLIENTS=${CLIENTS:-16}
OUTSTANDING=${OUTSTANDING:-1000}
DNSPERF_THREADS=${DNSPERF_THREADS:-2}
WRK_THREADS=${WRK_THREADS:-1}
WRK_CONNECTIONS=${WRK_CONNECTIONS:-32}
COMPARATOR=${COMPARATOR:-named}
NAMED_PORT=${NAMED_PORT:-18053}
INSTALL=${INSTALL:-1}
DOMAIN=herald.test
INSIDE=127.0.0.2
OUTSIDE=127.0.0.1

# --- tools -----------------------------------------------------------------------------------
need=(dnsperf:dnsperf wrk:wrk)
[[ $COMPARATOR == named ]] && need+=(named:bind9)
missing=()
for pair in "${need[@]}"; do
    command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
if ((${#missing[@]})); then
    if [[ $INSTALL == 1 && $(id -u) == 0 ]]; then
        echo "== installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        timeout 300 apt-get update -qq
        # policy-rc.d keeps Debian from starting the bind9 service; named is run below only.
        timeout 600 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "missing: ${missing[*]} (apt-get install them, or run as root with INSTALL=1)" >&2
        exit 1
    fi
fi
named_bin=$(command -v named || true)

target=${CARGO_TARGET_DIR:-target}
herald=$target/release/herald
if [[ -z ${SKIP_BUILD:-} ]]; then
    timeout 1800 cargo build --release -p herald
fi

# --- processes this script owns ----------------------------------------------------------------
work=$(mktemp -d -t herald-discovery-bench.XXXXXX)
chmod 755 "$work"
herald_pid=
named_pid=

# Stops process $1 (one this script started): TERM, then KILL after 5 s.
stop_pid() {
    local pid=$1 i
    [[ -n $pid ]] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    stop_pid "$herald_pid"
    herald_pid=
    stop_pid "$named_pid"
    named_pid=
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- herald ------------------------------------------------------------------------------------
topology() {
    cat <<EOF
[topology]
internal_networks = ["$INSIDE/32"]
reverse_proxy = ["127.0.0.20"]

[topology.edge]
access = ["127.0.0.10"]
av = ["127.0.0.11"]
webconf = ["127.0.0.12"]

[[topology.pools]]
fqdn = "pool.$DOMAIN"
members = [
  { fqdn = "fe01.$DOMAIN", addresses = ["127.0.0.1"] },
  { fqdn = "fe02.$DOMAIN", addresses = ["127.0.0.3"] },
]
EOF
}

# The config with the given listener addresses: $1 SIP UDP, $2 TCP, $3 TLS, $4 DNS, $5 HTTP,
# $6 HTTPS.
write_config() {
    cat <<EOF
data_dir = "$work/data"

[sip]
domain = "$DOMAIN"
udp = ["$1"]
tcp = ["$2"]
tls = ["$3"]

[dns]
listen = ["$4"]

[http]
admin = "127.0.0.1:0"
web = ["$5"]
web_tls = ["$6"]

[log]
filter = "warn"

$(topology)
EOF
}

config=$work/herald.toml
write_config 127.0.0.1:0 127.0.0.1:0 127.0.0.1:0 127.0.0.1:0 127.0.0.1:0 127.0.0.1:0 >"$config"
"$herald" --config "$config" serve >"$work/herald.out" 2>"$work/herald.log" &
herald_pid=$!
for ((i = 0; ; i++)); do
    grep -qx ready "$work/herald.out" && break
    if ! kill -0 "$herald_pid" 2>/dev/null || ((i >= 300)); then
        echo "herald did not print ready within 30 s:" >&2
        cat "$work/herald.out" >&2
        tail -n 30 "$work/herald.log" >&2
        exit 1
    fi
    sleep 0.1
done
bound() { awk -v k="$1" '$1 == "listening" && $2 == k { print $3; exit }' "$work/herald.out"; }
dns_addr=$(bound dns)
http_addr=$(bound http)
dns_port=${dns_addr##*:}
http_port=${http_addr##*:}

# `herald dns records` builds the topology without binding, so it is given a copy of the config
# with the ports serve bound: the zone files then hold exactly what serve answers (SOA serial
# included).
write_config "$(bound sip+udp)" "$(bound sip+tcp)" "$(bound sip+tls)" "$dns_addr" "$http_addr" \
    "$(bound https)" >"$work/bound.toml"
for view in internal external; do
    timeout 60 "$herald" --config "$work/bound.toml" dns records --format zone --view "$view" \
        >"$work/$view.zone"
    # Query files: every A and SRV name of the view, one line each (dnsperf cycles through them).
    awk '$4 == "A" || $4 == "SRV" { print $1, $4 }' "$work/$view.zone" | sort -u >"$work/$view.queries"
done

# --- named, the comparator ---------------------------------------------------------------------
if [[ $COMPARATOR == named ]]; then
    mkdir -p "$work/named"
    cat >"$work/named.conf" <<EOF
options {
    directory "$work/named";
    pid-file none;
    listen-on port $NAMED_PORT { 127.0.0.1; };
    listen-on-v6 { none; };
    recursion no;
    dnssec-validation no;
    notify no;
    allow-transfer { none; };
};
view internal {
    match-clients { $INSIDE; };
    zone "$DOMAIN" { type primary; file "$work/internal.zone"; };
};
view external {
    match-clients { any; };
    zone "$DOMAIN" { type primary; file "$work/external.zone"; };
};
EOF
    # Foreground (-f) so that $! is named itself; as many worker threads as cores (its default).
    "$named_bin" -f -c "$work/named.conf" >"$work/named.log" 2>&1 &
    named_pid=$!
    for ((i = 0; ; i++)); do
        answer=$(dig @127.0.0.1 -p "$NAMED_PORT" -b "$INSIDE" +short +tries=1 +time=1 \
            "sip.$DOMAIN" A 2>/dev/null || true)
        [[ -n $answer ]] && break
        if ! kill -0 "$named_pid" 2>/dev/null || ((i >= 100)); then
            echo "named did not answer within 10 s:" >&2
            tail -n 30 "$work/named.log" >&2
            exit 1
        fi
        sleep 0.1
    done
fi

# --- measurement helpers -----------------------------------------------------------------------
# CPU ticks (1/100 s) process $1 has used.
ticks() {
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

# The median of the numbers on standard input.
median() {
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Runs a load tool ($2...) with CPU accounting of server process $1: the tool's output goes to
# $work/out, "server=<% of one core> gen=<% of one core>" to $work/cpu.
with_cpu() {
    local pid=$1
    shift
    local before start TIMEFORMAT='%U %S %R'
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "the server under test (pid $pid) is gone" >&2
        exit 1
    fi
    before=$(ticks "$pid")
    start=$(date +%s%N)
    # --foreground keeps the tool in this process group, so an interrupt (Ctrl-C) stops it too.
    if ! { time "$@" >"$work/out" 2>&1; } 2>"$work/gen"; then
        echo "failed: $*" >&2
        cat "$work/out" >&2
        exit 1
    fi
    awk -v t="$(($(ticks "$pid") - before))" -v ns="$(($(date +%s%N) - start))" \
        '{ printf "server=%.0f gen=%.0f\n", t / 100 / (ns / 1e9) * 100, ($1 + $2) / $3 * 100 }' \
        "$work/gen" >"$work/cpu"
    [[ -n ${VERBOSE:-} ]] && cat "$work/out" >&2
    return 0
}

# dnsperf against $1 (name) at port $2 from source $3 with query file $4; one line of figures.
dnsperf_run() {
    local name=$1 port=$2 source=$3 queries=$4 pid
    case $name in
    herald) pid=$herald_pid ;;
    named) pid=$named_pid ;;
    esac
    with_cpu "$pid" timeout --foreground $((DURATION + 30)) dnsperf -s 127.0.0.1 -p "$port" \
        -a "$source" -d "$queries" -l "$DURATION" -c "$CLIENTS" -T "$DNSPERF_THREADS" -q "$OUTSTANDING" -t 2
    awk '
        /Queries per second:/ { qps = sprintf("%.0f", $4) }
        /Queries lost:/ { lost = $3 }
        /Average Latency/ { lat = sprintf("%.0f", $4 * 1e6) }
        /Response codes:/ { for (i = 3; i < NF; i++) if ($i == "NOERROR") { ok = $(i + 2); gsub(/[(),%]/, "", ok) } }
        END { printf "qps=%s lost=%s avg_us=%s noerror_pct=%s ", qps + 0, lost, lat, ok + 0 }
    ' "$work/out"
    cat "$work/cpu"
}

# wrk against herald's HTTP listener, path $1, Accept $2; one line of figures (latency in µs).
wrk_run() {
    local path=$1 accept=$2
    with_cpu "$herald_pid" timeout --foreground $((DURATION + 30)) wrk -t "$WRK_THREADS" \
        -c "$WRK_CONNECTIONS" -d "${DURATION}s" --latency \
        -H "Host: lyncdiscover.$DOMAIN:$http_port" -H "Accept: $accept" \
        "http://127.0.0.1:$http_port$path"
    awk '
        function us(v) {
            if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return v * 1000; if (v ~ /s$/) return v * 1e6
            return v + 0
        }
        /^Requests\/sec:/ { rps = sprintf("%.0f", $2) }
        $1 == "50%" { p50 = us($2) }
        $1 == "99%" { p99 = us($2) }
        /Non-2xx/ { bad = $5 }
        /Socket errors/ { for (i = 3; i <= NF; i += 2) errors += $(i + 1) }
        END {
            printf "rps=%s p50_us=%.0f p99_us=%.0f non2xx=%s socket_errors=%s ", rps + 0, p50, p99,
                bad + 0, errors + 0
        }
    ' "$work/out"
    cat "$work/cpu"
}

field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }

# Median of field $2 over the lines of file $1.
med() { while read -r line; do field "$line" "$2"; done <"$1" | median; }

# --- runs --------------------------------------------------------------------------------------
# Answers are checked once before the load: both servers give the same data for every name.
for view in internal external; do
    source=$([[ $view == internal ]] && echo "$INSIDE" || echo "$OUTSIDE")
    while read -r name type; do
        h=$(dig @127.0.0.1 -p "$dns_port" -b "$source" +short +tries=1 +time=2 "$name" "$type" | sort)
        [[ -n $h ]] || { echo "herald does not answer $view $name $type" >&2; exit 1; }
        if [[ -n $named_pid ]]; then
            n=$(dig @127.0.0.1 -p "$NAMED_PORT" -b "$source" +short +tries=1 +time=2 "$name" "$type" | sort)
            [[ $h == "$n" ]] || { echo "herald and named differ on $view $name $type: $h / $n" >&2; exit 1; }
        fi
    done <"$work/$view.queries"
done

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || commit+="+uncommitted changes"
echo "== discovery benchmark: $RUNS run(s) of ${DURATION}s each, herald $commit"
echo "   herald dns $dns_addr, http $http_addr; comparator: $COMPARATOR${named_pid:+ ($("$named_bin" -v), port $NAMED_PORT)}"
echo "   dnsperf: $CLIENTS clients, $DNSPERF_THREADS thread(s), $OUTSTANDING outstanding;" \
    "wrk: $WRK_THREADS thread(s), $WRK_CONNECTIONS connections"
echo "   query files: internal $(wc -l <"$work/internal.queries") names, external $(wc -l <"$work/external.queries") names (A and SRV)"
echo "   machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) before the runs"

servers=(herald)
[[ -n $named_pid ]] && servers+=(named)
for view in internal external; do
    source=$([[ $view == internal ]] && echo "$INSIDE" || echo "$OUTSIDE")
    for server in "${servers[@]}"; do
        port=$([[ $server == herald ]] && echo "$dns_port" || echo "$NAMED_PORT")
        : >"$work/dns-$server-$view"
        for ((run = 1; run <= RUNS; run++)); do
            # In this shell, not in $(...): an interrupt then reaches the trap once the tool stops.
            dnsperf_run "$server" "$port" "$source" "$work/$view.queries" >"$work/line"
            line=$(<"$work/line")
            echo "$line" >>"$work/dns-$server-$view"
            printf '   dns %-6s %-8s run %d: %s\n' "$server" "$view" "$run" "$line"
        done
    done
done

resources=(
    "root-xml /?sipuri=alice@$DOMAIN application/vnd.microsoft.rtc.autodiscover+xml;v=1"
    "user-json /Autodiscover/AutodiscoverService.svc/root/user?sipuri=alice@$DOMAIN application/vnd.microsoft.rtc.autodiscover+json;v=1"
)
for r in "${resources[@]}"; do
    read -r label path accept <<<"$r"
    : >"$work/http-$label"
    for ((run = 1; run <= RUNS; run++)); do
        wrk_run "$path" "$accept" >"$work/line"
        line=$(<"$work/line")
        echo "$line" >>"$work/http-$label"
        printf '   http %-9s run %d: %s\n' "$label" "$run" "$line"
    done
done

echo
echo "== DNS, medians of $RUNS run(s); cpu in % of one core (server; dnsperf = gen)"
printf '%-8s %-7s %10s %8s %8s %9s %7s %7s\n' view server queries/s lost avg_µs noerror% cpu% gen%
for view in internal external; do
    for server in "${servers[@]}"; do
        f=$work/dns-$server-$view
        printf '%-8s %-7s %10s %8s %8s %9s %7s %7s\n' "$view" "$server" "$(med "$f" qps)" \
            "$(med "$f" lost)" "$(med "$f" avg_us)" "$(med "$f" noerror_pct)" "$(med "$f" server)" \
            "$(med "$f" gen)"
    done
    if [[ -n $named_pid ]]; then
        awk -v h="$(med "$work/dns-herald-$view" qps)" -v n="$(med "$work/dns-named-$view" qps)" \
            -v v="$view" 'BEGIN { if (n > 0) printf "%-8s herald/named = %.2f\n", v, h / n }'
    fi
done
echo
echo "== autodiscover over HTTP (wrk), medians of $RUNS run(s); cpu in % of one core"
printf '%-10s %10s %8s %8s %8s %8s %7s %7s\n' resource requests/s p50_µs p99_µs non-2xx \
    sock_err cpu% gen%
for r in "${resources[@]}"; do
    read -r label _ <<<"$r"
    f=$work/http-$label
    printf '%-10s %10s %8s %8s %8s %8s %7s %7s\n' "$label" "$(med "$f" rps)" "$(med "$f" p50_us)" \
        "$(med "$f" p99_us)" "$(med "$f" non2xx)" "$(med "$f" socket_errors)" "$(med "$f" server)" \
        "$(med "$f" gen)"
done
echo "   load average after the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ -n ${VERBOSE:-} ]]; then
    echo "== herald's log (last 50 lines)"
    tail -n 50 "$work/herald.log"
fi
