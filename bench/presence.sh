#!/usr/bin/env bash
# Presence at scale (issue 7): the same sipload presence phases against Kamailio 5.6 (the
# baseline in ../shared/bench/kamailio) and herald, in the same run, with one results table of
# medians and herald/Kamailio ratios.
#
# Per run and per server: a fresh server on loopback, then `sipload presence`: (register every
# user: herald only, Kamailio's baseline config answers REGISTER 405), W×C subscriptions set up
# and held (memory read before and after: Kamailio's shm `real_used` through kamcmd, herald's
# VmRSS), the PUBLISH rate stepped up until loss or latency breaks (ETag-chained PIDF
# publications, every NOTIFY answered, publish → notify latency from a marker in the PIDF note),
# then the one-time query rate (SUBSCRIBE Expires: 0 → 2xx + NOTIFY) stepped up the same way;
# the server is stopped. Servers alternate within a run so that drift in the machine's load hits
# both. See bench/README.md ("Presence") for what the figures mean.
#
# Settings (environment):
#   SCENARIO=a        a: 1,000 presentities × 20 watchers each (20,000 watchers, one subscription
#                     each: the Kamailio baseline's shape); b: users watching each other (USERS
#                     users × CONTACTS contacts, same names for watchers and presentities);
#                     c: SUBS subscriptions held (10,000 presentities, SUBS/100 watchers × 100
#                     contacts), memory per subscription only (no publish/query steps);
#                     d: one-time queries only; e: sign-in storm: USERS (10,000) users, each
#                     publishing once, then registering (herald) and subscribing to CONTACTS (20)
#                     contacts at STORM_RATE (20,000) SUBSCRIBEs/s: time until every subscription
#                     has its initial NOTIFY, and how many never got one.
#                     PRESENTITIES / WATCHERS / CONTACTS override the shape.
#   RUNS=3            runs per server (medians and the median of per-run ratios are printed)
#   SERVERS="kamailio herald"   which servers, in the order they run within a run
#   SUBSCRIBE_RATE=2000   SUBSCRIBEs/s while setting up (the baseline's)
#   PUBLISH_RATES="250,500,1000,1400,1800,2200,2600,3000,4000,5000,6000,8000,10000"
#   FETCH_RATES="2000,4000,8000,12000,16000,18000,20000,25000,30000,40000,50000"
#   PUBLISH_DURATION=10s FETCH_DURATION=5s   length of each step
#   THREADS=2         sipload worker threads (watcher-side receive load)
#   DRAIN=3s          after a phase's last start, how long sipload waits for answers (35s in e)
#   SIPLOAD_ARGS=     more sipload options
#   AUTH=auto         herald: auto = `[sip] trusted_networks = ["127.0.0.0/8"]` when herald
#                     knows the option, else Digest; digest = always Digest (password per user)
#   KAM_SHM_MB=2048 KAM_CHILDREN=4   Kamailio's shared memory pool and UDP workers (baseline's)
#   KAM_PORT= HERALD_SIP_PORT= HERALD_ADMIN_PORT=   loopback ports (default: unused ones, picked
#                     by the kernel at start)
#   NICE=-10          this script re-runs itself in a new session (its own scheduler autogroup)
#                     and gives that group nice -10, so other sessions' builds take less CPU from
#                     the servers and the generator (both get the same); 0: leave it alone
#   INSTALL=1         apt-get install kamailio, kamailio-presence-modules, sip-tester if missing
#   SKIP_BUILD=1      use the binaries already built
#   OUT=dir           keep every run's output there (default: a temporary folder, removed)
#   VERBOSE=1         print sipload's whole output of every run
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

NICE=${NICE:--10}
if [[ $NICE != 0 && -z ${PRESENCE_SH_SESSION:-} ]] && command -v setsid >/dev/null; then
    # The run itself, in a session of its own; an interrupt here is passed on to it, and it
    # stops what it started before exiting.
    export PRESENCE_SH_SESSION=1
    setsid --wait bash "$0" "$@" &
    inner=$!
    trap 'kill -TERM "$inner" 2>/dev/null' INT TERM
    status=0
    wait "$inner" || status=$?
    while kill -0 "$inner" 2>/dev/null; do
        wait "$inner" || status=$?
    done
    exit "$status"
fi
if [[ $NICE != 0 && -w /proc/self/autogroup ]]; then
    echo "$NICE" >/proc/self/autogroup 2>/dev/null || true
fi

SCENARIO=${SCENARIO:-a}
RUNS=${RUNS:-3}
SERVERS=${SERVERS:-"kamailio herald"}
SUBSCRIBE_RATE=${SUBSCRIBE_RATE:-2000}
PUBLISH_RATES=${PUBLISH_RATES:-"250,500,1000,1400,1800,2200,2600,3000,4000,5000,6000,8000,10000"}
FETCH_RATES=${FETCH_RATES:-"2000,4000,8000,12000,16000,18000,20000,25000,30000,40000,50000"}
PUBLISH_DURATION=${PUBLISH_DURATION:-10s}
FETCH_DURATION=${FETCH_DURATION:-5s}
THREADS=${THREADS:-2}
SIPLOAD_ARGS=${SIPLOAD_ARGS:-}
AUTH=${AUTH:-auto}
KAM_SHM_MB=${KAM_SHM_MB:-2048}
KAM_CHILDREN=${KAM_CHILDREN:-4}
INSTALL=${INSTALL:-1}
DOMAIN=example.com # the Kamailio config's domain; herald serves the same one

case $SCENARIO in
a)
    PRESENTITIES=${PRESENTITIES:-1000} WATCHERS=${WATCHERS:-20000} CONTACTS=${CONTACTS:-1}
    WATCHER_FORMAT='w{n}'
    ;;
b)
    PRESENTITIES=${PRESENTITIES:-${USERS:-10000}} CONTACTS=${CONTACTS:-50}
    WATCHERS=${WATCHERS:-$PRESENTITIES} WATCHER_FORMAT='p{n}'
    ;;
c)
    SUBS=${SUBS:-1000000}
    PRESENTITIES=${PRESENTITIES:-10000} CONTACTS=${CONTACTS:-100}
    WATCHERS=${WATCHERS:-$((SUBS / CONTACTS))} WATCHER_FORMAT='w{n}'
    PUBLISH_RATES="" FETCH_RATES=""
    SUBSCRIBE_RATE=${SUBSCRIBE_RATE_C:-4000}
    ;;
d)
    PRESENTITIES=${PRESENTITIES:-1000} WATCHERS=${WATCHERS:-20000} CONTACTS=${CONTACTS:-1}
    WATCHER_FORMAT='w{n}' PUBLISH_RATES=""
    ;;
e)
    # Every user publishes once (seed), then all register and subscribe to their contact lists
    # at STORM_RATE SUBSCRIBEs/s: clients sign in one after the other, each subscribing to its
    # whole list at once (subscriptions are numbered client by client).
    PRESENTITIES=${PRESENTITIES:-${USERS:-10000}} CONTACTS=${CONTACTS:-20}
    WATCHERS=${WATCHERS:-$PRESENTITIES} WATCHER_FORMAT='p{n}'
    SUBSCRIBE_RATE=${STORM_RATE:-20000} PUBLISH_RATES="" FETCH_RATES=""
    SEED_RATE=${SEED_RATE:-2000}
    # Wait for stragglers up to Timer F, so that the storm's figure is the time until the last
    # initial NOTIFY, not until a short drain gave up.
    DRAIN=${DRAIN:-35s}
    ;;
*)
    echo "SCENARIO must be a, b, c, d or e" >&2
    exit 2
    ;;
esac
SUBSCRIPTIONS=$((WATCHERS * CONTACTS))
SEED_RATE=${SEED_RATE:-}
DRAIN=${DRAIN:-3s}
# Users herald must know: presentities, and watchers unless they are the same users.
if [[ $WATCHER_FORMAT == 'p{n}' ]]; then
    USERS_TOTAL=$((PRESENTITIES > WATCHERS ? PRESENTITIES : WATCHERS))
else
    USERS_TOTAL=$((PRESENTITIES + WATCHERS))
fi

# ------------------------------------------------------------------ tools
if [[ $INSTALL == 1 ]]; then
    need=()
    command -v kamailio >/dev/null || need+=(kamailio)
    [[ -e /usr/lib/x86_64-linux-gnu/kamailio/modules/presence.so ]] || need+=(kamailio-presence-modules)
    command -v sipp >/dev/null || need+=(sip-tester)
    if ((${#need[@]})); then
        echo "== installing ${need[*]}"
        timeout 600 apt-get update -qq
        DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq "${need[@]}" >/dev/null
    fi
fi
for tool in kamailio kamcmd python3; do
    if [[ $SERVERS == *kamailio* || $tool == python3 ]] && ! command -v $tool >/dev/null; then
        echo "$tool is missing (INSTALL=1 installs it)" >&2
        exit 1
    fi
done
# A loopback port free for both UDP and TCP, as the kernel picks it (each server listens on both).
free_port() {
    python3 -c 'import socket
for _ in range(50):
    t = socket.socket(); t.bind(("127.0.0.1", 0)); p = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", p)); print(p); break
    except OSError:
        pass'
}
KAM_PORT=${KAM_PORT:-$(free_port)}
HERALD_SIP_PORT=${HERALD_SIP_PORT:-$(free_port)}
HERALD_ADMIN_PORT=${HERALD_ADMIN_PORT:-$(free_port)}
kamailio_cfg=$repo/../shared/bench/kamailio/kamailio.cfg
if [[ $SERVERS == *kamailio* && ! -r $kamailio_cfg ]]; then
    echo "no Kamailio baseline config at $kamailio_cfg" >&2
    exit 1
fi
# Bigger socket buffers, so that bursts are not dropped by the kernel (best effort; the
# Kamailio config asks for 4 MiB, sipload for 8 MiB).
sysctl -q -w net.core.rmem_max=33554432 net.core.wmem_max=33554432 2>/dev/null || true

target=${CARGO_TARGET_DIR:-target}
herald=$target/release/herald
sipload=$target/release/sipload
if [[ -z ${SKIP_BUILD:-} ]]; then
    timeout 1800 cargo build --release -p sipload
    if [[ $SERVERS == *herald* ]] && ! timeout 1800 cargo build --release -p herald; then
        echo "herald does not build: its side is skipped" >&2
        SERVERS=${SERVERS//herald/}
    fi
fi

if [[ -n ${OUT:-} ]]; then
    work=$OUT
    mkdir -p "$work"
    keep=1
else
    work=$(mktemp -d -t presence-bench.XXXXXX)
    keep=
fi
server_pid=
server_name=
sipload_pid=

# Stops the server this script started: TERM, then KILL after 10 s.
stop_server() {
    if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        local i
        for ((i = 0; i < 100; i++)); do
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    server_pid=
}
cleanup() {
    if [[ -n $sipload_pid ]]; then
        kill -TERM "$sipload_pid" 2>/dev/null || true
        wait "$sipload_pid" 2>/dev/null || true
    fi
    stop_server
    [[ -n $keep ]] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

password=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
printf '%s\n' "$password" >"$work/password"

# ------------------------------------------------------------------ Kamailio
# The baseline's kamailio.cfg, read from ../shared (not copied), with run.sh's overrides:
# loopback port KAM_PORT over UDP and TCP, its control socket in this run's folder.
start_kamailio() {
    local dir=$work/kamailio.$1
    rm -rf "$dir"
    mkdir -p "$dir"
    kamailio -f "$kamailio_cfg" -DD -E -m "$KAM_SHM_MB" -M 32 -w "$dir" \
        -A "BENCH_LISTEN_UDP=udp:127.0.0.1:$KAM_PORT" -A "BENCH_LISTEN_TCP=tcp:127.0.0.1:$KAM_PORT" \
        -A "BENCH_SRV_ADDR=\"sip:presence@127.0.0.1:$KAM_PORT\"" -A "BENCH_CTL=\"unix:$dir/ctl\"" \
        -A "BENCH_CHILDREN=$KAM_CHILDREN" >"$dir/log" 2>&1 &
    server_pid=$!
    server_name=kamailio
    local i
    for ((i = 0; i < 100; i++)); do
        kamcmd -s "unix:$dir/ctl" core.uptime >/dev/null 2>&1 && break
        if ! kill -0 "$server_pid" 2>/dev/null; then
            echo "kamailio exited at start:" >&2
            tail -n 20 "$dir/log" >&2
            exit 1
        fi
        sleep 0.2
    done
    server_addr=127.0.0.1:$KAM_PORT
    memory_command="kamcmd -s unix:$dir/ctl core.shmmem"
    server_args=()
}

# ------------------------------------------------------------------ herald
herald_ready=
herald_trusted=0
prepare_herald() {
    [[ -n $herald_ready ]] && return
    local hw=$work/herald
    mkdir -p "$hw"
    herald_config=$hw/herald.toml
    write_herald_config() {
        cat >"$herald_config" <<EOF
data_dir = "$hw/data"

[sip]
domain = "$DOMAIN"
udp = ["127.0.0.1:$HERALD_SIP_PORT"]
tcp = []
tls = []
$1

[presence]
# Kamailio limits no one's queries: neither does herald here, so the query steps measure
# capacity, not the per-user polling limit a production server keeps.
poll_burst = 4000000000

[dns]
listen = []

[http]
admin = "127.0.0.1:$HERALD_ADMIN_PORT"
web = []
web_tls = []

[log]
filter = "warn"
EOF
    }
    herald_trusted=0
    if [[ $AUTH == auto ]]; then
        write_herald_config 'trusted_networks = ["127.0.0.0/8"]'
        if timeout 120 "$herald" --config "$herald_config" directory prepare >/dev/null 2>"$hw/prepare.err"; then
            herald_trusted=1
        else
            echo "   herald does not take [sip] trusted_networks yet ($(head -c 200 "$hw/prepare.err" | tr '\n' ' ')): Digest it is"
        fi
    fi
    if ((!herald_trusted)); then
        write_herald_config ''
        timeout 120 "$herald" --config "$herald_config" directory prepare >/dev/null
    fi
    echo "== herald: $USERS_TOTAL users in $DOMAIN ($( ((herald_trusted)) && echo "trusted network 127.0.0.0/8, no challenges" || echo "Digest"))"
    {
        for ((n = 0; n < PRESENTITIES; n++)); do
            printf 'p%d@%s,%s\n' "$n" "$DOMAIN" "$password"
        done
        if [[ $WATCHER_FORMAT == 'w{n}' ]]; then
            for ((n = 0; n < WATCHERS; n++)); do
                printf 'w%d@%s,%s\n' "$n" "$DOMAIN" "$password"
            done
        elif ((WATCHERS > PRESENTITIES)); then
            for ((n = PRESENTITIES; n < WATCHERS; n++)); do
                printf 'p%d@%s,%s\n' "$n" "$DOMAIN" "$password"
            done
        fi
    } >"$hw/users.csv"
    timeout 120 "$herald" --config "$herald_config" domain add "$DOMAIN" >/dev/null
    timeout 1800 "$herald" --config "$herald_config" user import "$hw/users.csv" >/dev/null
    herald_ready=1
}

start_herald() {
    prepare_herald
    local log=$work/herald/serve.$1.log
    : >"$log"
    "$herald" --config "$herald_config" serve >"$log" 2>&1 &
    server_pid=$!
    server_name=herald
    local i
    for ((i = 0; ; i++)); do
        if ! kill -0 "$server_pid" 2>/dev/null; then
            echo "herald exited at start:" >&2
            tail -n 30 "$log" >&2
            exit 1
        fi
        grep -q '^listening admin' "$log" && break
        if ((i >= 600)); then
            echo "herald did not start listening within 60 s" >&2
            tail -n 30 "$log" >&2
            exit 1
        fi
        sleep 0.1
    done
    server_addr=127.0.0.1:$HERALD_SIP_PORT
    memory_command="awk '/^VmRSS:/ { print \$2 * 1024 }' /proc/$server_pid/status"
    # Registration is a phase of its own for herald (Kamailio's config has no registrar).
    server_args=(--register-rate "$SUBSCRIBE_RATE" --password-file "$work/password")
}

# ------------------------------------------------------------------ runs
# The walls of each sipload run: set-up, every step, gaps and recovery, with room to spare.
steps() { tr ',' '\n' <<<"$1" | grep -c . || true; }
seconds() { awk -v d="$1" 'BEGIN { n = d + 0; if (d ~ /ms$/) n /= 1000; else if (d ~ /m$/) n *= 60; print n }'; }
run_timeout=$(awk -v u="$USERS_TOTAL" -v s="$SUBSCRIPTIONS" -v r="$SUBSCRIBE_RATE" \
    -v np="$(steps "$PUBLISH_RATES")" -v pd="$(seconds "$PUBLISH_DURATION")" \
    -v nf="$(steps "$FETCH_RATES")" -v fd="$(seconds "$FETCH_DURATION")" \
    'BEGIN { printf "%d", 2 * (u + s) / r + np * (pd + 8) + nf * (fd + 8) + 300 }')

echo "== scenario $SCENARIO: $PRESENTITIES presentities, $WATCHERS watchers × $CONTACTS = $SUBSCRIPTIONS subscriptions;" \
    "$RUNS run(s) of: ${SERVERS}"
echo "   sipload: $THREADS thread(s), subscribe $SUBSCRIBE_RATE/s, publish steps ${PUBLISH_RATES:-none} ($PUBLISH_DURATION)," \
    "query steps ${FETCH_RATES:-none} ($FETCH_DURATION) $SIPLOAD_ARGS"
echo "   machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) before the runs;" \
    "scheduler group nice $NICE"
for ((run = 1; run <= RUNS; run++)); do
    for server in $SERVERS; do
        case $server in
        kamailio) start_kamailio "$run" ;;
        herald) start_herald "$run" ;;
        *)
            echo "unknown server $server" >&2
            exit 2
            ;;
        esac
        out=$work/$server.$run.out
        echo "-- run $run: $server (pid $server_pid on udp $server_addr), load average $(cut -d' ' -f1 /proc/loadavg)"
        # In the background, so that an interrupt is handled at once (see cleanup).
        # shellcheck disable=SC2086 # SIPLOAD_ARGS is a list of options
        timeout "$run_timeout" "$sipload" presence --server "$server_addr" --domain "$DOMAIN" \
            --presentities "$PRESENTITIES" --watchers "$WATCHERS" --contacts "$CONTACTS" \
            --watcher-format "$WATCHER_FORMAT" --subscribe-rate "$SUBSCRIBE_RATE" \
            --publish-rates "$PUBLISH_RATES" --publish-duration "$PUBLISH_DURATION" \
            --fetch-rates "$FETCH_RATES" --fetch-duration "$FETCH_DURATION" \
            --threads "$THREADS" --server-pid "$server_pid" --memory-command "$memory_command" \
            ${SEED_RATE:+--seed-rate "$SEED_RATE"} --drain "$DRAIN" \
            "${server_args[@]}" $SIPLOAD_ARGS >"$out" 2>&1 &
        sipload_pid=$!
        if ! wait "$sipload_pid"; then
            echo "   sipload failed or timed out against $server; its output:" >&2
            tail -n 20 "$out" >&2
        fi
        sipload_pid=
        [[ -n ${VERBOSE:-} ]] && grep -v '^RESULT' "$out"
        grep -E '^(subscribe|memory|  highest|  no )' "$out" | sed 's/^/   /' || true
        stop_server
        sleep 2
    done
done
echo "   load average after the runs: $(cut -d' ' -f1-3 /proc/loadavg)"

# ------------------------------------------------------------------ table
echo
python3 - "$work" "$RUNS" "$SERVERS" "$SCENARIO" <<'EOF'
import statistics, sys

work, runs, servers, scenario = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4]

def results(server, run):
    out = {}
    try:
        lines = open(f"{work}/{server}.{run}.out").read().splitlines()
    except OSError:
        return out
    for line in lines:
        if not line.startswith("RESULT "):
            continue
        parts = line.split()
        fields = dict(p.split("=", 1) for p in parts[2:] if "=" in p)
        out.setdefault(parts[1], []).append(fields)
    return out

def num(v):
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if f == f else None  # NaN: nothing measured

def last(r, kind, key):
    rows = r.get(kind) or []
    return num(rows[-1].get(key)) if rows else None

def at_rate(r, rate, key):
    """herald's figure at the publish step Kamailio sustained at its best"""
    for row in r.get("presence-publish", []):
        if num(row.get("offered")) == rate:
            return num(row.get(key))
    return None

figures = [
    # label, extractor, decimals, target note
    ("users registered /s (herald only: Kamailio's config has no registrar)", lambda r: last(r, "presence-register", "rate"), 0, ""),
    ("subscriptions held", lambda r: last(r, "presence-subscribe", "established"), 0, ""),
] + ([
    ("storm: seconds until every subscription has its initial NOTIFY",
     lambda r: last(r, "presence-subscribe", "first_wall_s")
     if last(r, "presence-subscribe", "first_established") == last(r, "presence-subscribe", "subs") else None, 1, "all, no loss"),
    ("storm: subscriptions without their initial NOTIFY",
     lambda r: (last(r, "presence-subscribe", "subs") or 0) - (last(r, "presence-subscribe", "first_established") or 0)
     if r.get("presence-subscribe") else None, 0, "0"),
] if scenario == "e" else []) + [
    ("subscription set-up /s", lambda r: last(r, "presence-subscribe", "rate"), 0, ""),
    ("bytes per subscription (herald RSS, Kamailio shm)", lambda r: last(r, "presence-memory", "bytes_per_sub"), 0, "≤ 1/4"),
    ("max sustained PUBLISH/s", lambda r: last(r, "presence-publish-max", "rate"), 0, ""),
    ("answered NOTIFY/s at that rate", lambda r: last(r, "presence-publish-max", "notify_rate"), 0, "≥ 3×"),
    ("publish → notify p50 ms at that rate", lambda r: (last(r, "presence-publish-max", "lat_p50_us") or 0) / 1000 or None, 1, ""),
    ("publish → notify p99 ms at that rate", lambda r: (last(r, "presence-publish-max", "lat_p99_us") or 0) / 1000 or None, 1, ""),
    ("max sustained one-time queries/s", lambda r: last(r, "presence-fetch-max", "rate"), 0, "≥ 3×"),
    ("query SUBSCRIBE → NOTIFY p99 ms", lambda r: (last(r, "presence-fetch-max", "p99_us") or 0) / 1000 or None, 2, ""),
]
per = {s: [results(s, i) for i in range(1, runs + 1)] for s in servers}

def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None

def fmt(v, nd):
    if v is None:
        return "-"
    return f"{v:,.{nd}f}"

have_both = "herald" in per and "kamailio" in per
print(f"== presence, scenario {scenario}: medians of {runs} run(s)" +
      ("; ratio = median over runs of herald / Kamailio in the same run" if have_both else ""))
head = "| figure | " + " | ".join(s.capitalize() if s != "kamailio" else "Kamailio 5.6" for s in servers)
head += " | herald / Kamailio | target |" if have_both else " |"
print(head)
print("|---" * (len(servers) + 1 + (2 if have_both else 0)) + "|")
for label, f, nd, target in figures:
    vals = {s: [f(r) if r else None for r in per[s]] for s in servers}
    row = f"| {label} | " + " | ".join(fmt(med(vals[s]), nd) for s in servers)
    if have_both:
        ratios = [h / k for h, k in zip(vals["herald"], vals["kamailio"]) if h and k]
        row += f" | {fmt(med(ratios), 2)} | {target} |"
    else:
        row += " |"
    if any(v is not None for s in servers for v in vals[s]):
        print(row)
if have_both:
    # herald's publish → notify p99 at Kamailio's highest sustained rate, same run
    p99s = []
    for h, k in zip(per["herald"], per["kamailio"]):
        rate = last(k, "presence-publish-max", "sustained")
        v = at_rate(h, rate, "lat_p99_us") if rate else None
        p99s.append(v / 1000 if v else None)
    if any(p99s):
        cells = " | ".join(fmt(med(p99s), 1) if s == "herald" else "-" for s in servers)
        print(f"| herald's publish → notify p99 ms at Kamailio's max rate | {cells} | | ≤ 10 ms |")
blank = " |" * (len(servers) - 1 + (2 if have_both else 0))
print(f"| loopback ceiling, answered NOTIFY/s (issue 7) | ~145,000 |{blank}")
EOF
if [[ -n $keep ]]; then
    echo "(every run's output is in $work)"
fi
