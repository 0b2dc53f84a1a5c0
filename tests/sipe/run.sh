#!/usr/bin/env bash
# Acceptance test of issue 6: two real Lync clients (SIPE, the pidgin-sipe plugin, inside
# finch) sign in to `herald serve` over TLS with NTLM and see each other's presence live.
#
# Recipe: ../shared/briefs/sipe-client.md §7. finch + pidgin-sipe run headless under a private
# tmux server, each with its own HOME, purple config dir and private D-Bus session bus; the
# libxml2 SAX1 shim (../shared/tools/sipe/sax1shim.c) is preloaded so SIPE can parse XML on
# Debian 12; purple-send (libpurple's D-Bus API) reads buddy state and sets own status.
#
# Steps, each failing with a message that names it:
#   1. discovery: the accounts' server setting is empty; inside a private network namespace
#      whose resolver is herald's own DNS, A finds herald through Lync autodiscover over HTTPS,
#      B (autodiscover names blocked) through DNS SRV; checked from their debug logs;
#   2. NTLM sign-in over TLS, contact lists and display names;
#   3. A: Busy, Do Not Disturb, Be Right Back, Away, Available, each seen by B within 1 s of
#      A's publication; B: Busy, Available seen by A;
#   4. Off Work, published for A by a second, non-SIPE endpoint (SIPp, Digest, SERVICE), seen
#      by B as away with the off-work token;
#   5. a SIMPLE client (SIPp, Digest, PIDF): its busy/away/removed publications seen by A's
#      SIPE; A's Busy/Available reaching its subscription as PIDF within 1 s;
#   6. A signs out: B shows A offline, the SIMPLE watcher gets <basic>closed</basic>.
#
# Usage: tests/sipe/run.sh            (from anywhere; exits 0 only when every step passed)
#
# Environment:
#   HERALD                 the herald binary (default: `cargo build --release -p herald`, found
#                          under $CARGO_TARGET_DIR or <repo>/target)
#   SIPE_SHIM_SRC          sax1shim.c (default: <repo>/../shared/tools/sipe/sax1shim.c)
#   SIPE_SERVER            unset (the default): the accounts' `server` setting is empty and
#                          SIPE finds herald itself (see "Discovery" below); "direct": the
#                          setting names herald's TLS listener (127.0.0.1:<port>) and no
#                          namespace is used; anything else: the `server` setting as given
#   SIPE_LOGIN_A/B         optional login part of the account name ("alice@example.test,<login>"),
#                          e.g. 'EXAMPLE\alice'; by default there is none, so SIPE's NTLM user is
#                          the full sign-in address and the NTLM domain is empty
#   SIPE_AUTH              the account's `authentication` setting (default ntlm)
#   SIPE_SIGNIN_TIMEOUT    seconds to wait for each sign-in (default 30)
#   SIPE_STATUS_TIMEOUT    seconds B may take to show A's new status (default 1, issue 6 §4)
#   SIPE_SIGNOUT_TIMEOUT   seconds B may take to show A offline after A signs out (default 5)
#   SIPE_KEEP=1            keep the work dir (logs, configs) even on success
#   SIPE_ARTIFACTS=DIR     copy the logs there at the end (for CI)
#   SIPE_NO_INSTALL=1      never run apt-get; fail if something is missing
#   SIPE_HERALD_SIP_TOML   extra lines for herald's [sip] table (e.g. the key that makes the TLS
#                          listener offer NTLM, until the script writes it itself)
#   SIPE_TRUSTED=1         diagnostic mode, NOT the acceptance test: herald trusts 127.0.0.0/8
#                          ([sip] trusted_networks), so it answers the unauthenticated REGISTER
#                          with 200 and SIPE signs in without NTLM (brief §1.2); the NTLM checks
#                          are skipped. Exercises the presence ladder before NTLM exists. The
#                          SIPp steps (Off Work, SIMPLE) expect Digest challenges and fail in it.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

DOMAIN=example.test
USER_A=alice@$DOMAIN
USER_B=bob@$DOMAIN
NAME_A="Alice Anders"
NAME_B="Bob Builder"
PASS_A='Alice-pw-1'
PASS_B='Bob-pw-2'
# A SIMPLE (RFC 3856/3903) user on A's contact list, played by SIPp with Digest.
USER_C=carol@$DOMAIN
NAME_C="Carol Simple"
PASS_C='Carol-pw-3'
SIGNIN_TIMEOUT=${SIPE_SIGNIN_TIMEOUT:-30}
STATUS_TIMEOUT=${SIPE_STATUS_TIMEOUT:-1}
SIGNOUT_TIMEOUT=${SIPE_SIGNOUT_TIMEOUT:-5}
AUTH=${SIPE_AUTH:-ntlm}

log() { printf '[sipe %s] %s\n' "$(date +%H:%M:%S.%3N)" "$*" >&2; }
now_ms() { date +%s%3N; }

T=""
HERALD_PID=""
DBUS_PIDS=()
WATCH_PID=""
PUBLISH_PID=""
FAILED=0

# ---------------------------------------------------------------------------------------------
# Cleanup: only the processes this script started, by pid.
# ---------------------------------------------------------------------------------------------
# TERM to every pid at once, then KILL whatever still runs after `grace` seconds.
kill_pids() { # grace pid...
    local grace=$1 pid i alive
    shift
    for pid in "$@"; do [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null; done
    for ((i = 0; i < grace * 10; i++)); do
        alive=0
        for pid in "$@"; do [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" = 1 ] || return 0
        sleep 0.1
    done
    for pid in "$@"; do [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; done
    return 0
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [ "$FAILED" = 1 ] && rc=1
    # SIPp runs under timeout(1), which passes the TERM on to SIPp.
    local pids=("$HERALD_PID" "${DBUS_PIDS[@]}" "$WATCH_PID" "$PUBLISH_PID")
    if [ -n "$T" ]; then
        for side in a b; do
            [ -f "$T/$side/finch.pid" ] && pids+=("$(cat "$T/$side/finch.pid")")
        done
    fi
    kill_pids 5 "${pids[@]}"
    [ -n "$T" ] && [ -S "$T/tmux.sock" ] && tmux -S "$T/tmux.sock" kill-server 2>/dev/null
    if [ -n "$T" ]; then
        if [ -n "${SIPE_ARTIFACTS:-}" ]; then
            mkdir -p "$SIPE_ARTIFACTS"
            cp "$T/a/debug.log" "$SIPE_ARTIFACTS/finch-a.log" 2>/dev/null
            cp "$T/b/debug.log" "$SIPE_ARTIFACTS/finch-b.log" 2>/dev/null
            cp "$T/herald/serve.log" "$SIPE_ARTIFACTS/herald.log" 2>/dev/null
            [ -d "$T/sipp" ] && cp -r "$T/sipp" "$SIPE_ARTIFACTS/sipp" 2>/dev/null
        fi
        if [ "$rc" = 0 ] && [ -z "${SIPE_KEEP:-}" ]; then
            rm -rf "$T"
        else
            log "work dir kept: $T"
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# ---------------------------------------------------------------------------------------------
# Diagnostics
# ---------------------------------------------------------------------------------------------

# The SIP messages SIPE logged (PURPLE_UNSAFE_DEBUG=1), first N of them (0 = all).
sip_messages() { # log [n]
    awk -v max="${2:-0}" '
        /MESSAGE START/ { inmsg = 1; n++; if (max && n > max) exit; print "----- " $0; next }
        /MESSAGE END/   { if (inmsg) print "----- " $0; inmsg = 0; next }
        inmsg           { sub(/\r$/, ""); print }
    ' "$1" 2>/dev/null
}

# The first line of every message SIPE dropped as unsigned after the NTLM handshake (brief §1.3:
# "message without authentication data - ignoring"), provisional responses left out: OCS does
# not sign those either and SIPE ignores them harmlessly.
unsigned_dropped() { # log
    awk '
        /MESSAGE START <<<<<<<<<</  { getline; first = $0; sub(/\r$/, "", first); next }
        /without authentication data - ignoring/ { if (first !~ /^SIP\/2\.0 1/) print first }
    ' "$1" 2>/dev/null
}

# Every error response SIPE received, with the headers that say why.
error_responses() { # log
    awk '
        /MESSAGE START <<<<<<<<<</ { inmsg = 1; first = 1; show = 0; next }
        /MESSAGE END/              { inmsg = 0; next }
        inmsg && first             { first = 0; sub(/\r$/, ""); if ($0 ~ /^SIP\/2\.0 [3-6][0-9][0-9]/) { show = 1; print } next }
        inmsg && show && /^(CSeq|Call-ID|Unsupported|Warning|ms-diagnostics|WWW-Authenticate|Proxy-Authenticate|Retry-After|Min-Expires):/ { sub(/\r$/, ""); print "    " $0 }
    ' "$1" 2>/dev/null
}

# The debug-log lines that say how sign-in and presence went.
client_story() { # log
    grep -a -E 'sipe:|account:|connection:|proxy:|nss:|certificate|ssl|dbus' "$1" 2>/dev/null |
        grep -a -v -E '^\s*$|Cipher - |TLS_' |
        grep -a -E -i 'error|fail|invalid|incompatible|reject|refused|not found|ignor|warn|cert|ssl|tls|transport|connect|register|auth|ntlm|signature|buddy|status|presence|publish|subscri|notify|disconnect' |
        tail -n "${SIPE_STORY_LINES:-60}"
}

dump_side() { # side label
    local side=$1 label=$2 f="$T/$1/debug.log"
    echo
    echo "=============== client $label ($side): key debug-log lines ($f) ==============="
    client_story "$f"
    echo
    echo "=============== client $label: error responses from herald ==============="
    error_responses "$f"
    echo
    echo "=============== client $label: first SIP messages on the wire ==============="
    sip_messages "$f" "${SIPE_DUMP_MESSAGES:-6}"
    local total
    total=$(grep -a -c 'MESSAGE START' "$f" 2>/dev/null)
    if [ "${total:-0}" -gt "${SIPE_DUMP_MESSAGES:-6}" ]; then
        echo
        echo "=============== client $label: last SIP messages (of $total) ==============="
        sip_messages "$f" 0 | tail -n "${SIPE_DUMP_TAIL:-120}"
    fi
    if [ -S "$T/tmux.sock" ]; then
        echo
        echo "=============== client $label: finch screen ==============="
        tmux -S "$T/tmux.sock" capture-pane -p -t "$side" 2>/dev/null | sed '/^\s*$/d' | tail -n 30
    fi
}

dump_all() {
    [ -n "$T" ] || return 0
    for side in a b; do
        [ -f "$T/$side/debug.log" ] && dump_side "$side" "$(side_user "$side")"
    done
    if [ -f "$T/herald/serve.log" ]; then
        echo
        echo "=============== herald serve log (last lines) ==============="
        tail -n "${SIPE_HERALD_LINES:-60}" "$T/herald/serve.log"
    fi
    if [ -n "$HERALD_PID" ] && kill -0 "$HERALD_PID" 2>/dev/null; then
        for u in "$USER_A" "$USER_B"; do
            echo
            echo "=============== herald presence show $u ==============="
            timeout 5 "$HERALD" --config "$T/herald/herald.toml" presence show "$u" 2>&1
        done
    fi
}

# A fatal client-side error in the debug log, if any (so a doomed sign-in fails fast).
# Failed autodiscover requests (sipe_http_*: an HTTP transport dropped) are not fatal: with
# discovery SIPE expects some of them and moves on to the next method.
fatal_error() { # side
    grep -a -E 'Authentication failed|Incompatible authentication scheme|Invalid message signature|You have been rejected by the server|received incompatible NTLM|Connection error on|SSL Connection Failed|SSL peer presented an invalid certificate|Password is required|Service unavailable|sip_sec_init_context: failed' \
        "$T/$1/debug.log" 2>/dev/null | grep -a -v -m1 'sipe: sipe_http_'
}

fail() {
    FAILED=1
    echo >&2
    echo "SIPE ACCEPTANCE TEST FAILED: $*" >&2
    local side err
    for side in a b; do
        err=$(fatal_error "$side")
        [ -z "$err" ] || echo "  $(side_user "$side"): SIPE reported: $err" >&2
        err=$(grep -a -c 'without authentication data - ignoring' "$T/$side/debug.log" 2>/dev/null)
        [ "${err:-0}" = 0 ] || echo "  $(side_user "$side"): SIPE ignored $err unsigned message(s) from herald" >&2
    done
    dump_all >&2
    echo >&2
    echo "SIPE ACCEPTANCE TEST FAILED: $*" >&2
    exit 1
}

side_user() { [ "$1" = a ] && echo "$USER_A" || echo "$USER_B"; }

# ---------------------------------------------------------------------------------------------
# 1. Tools
# ---------------------------------------------------------------------------------------------
need_install=()
command -v finch >/dev/null || need_install+=(finch)
[ -e /usr/lib/purple-2/libsipe.so ] || need_install+=(pidgin-sipe)
command -v purple-send >/dev/null || need_install+=(libpurple-bin)
command -v dbus-send >/dev/null || need_install+=(dbus)
command -v dbus-daemon >/dev/null || need_install+=(dbus)
command -v tmux >/dev/null || need_install+=(tmux)
command -v gcc >/dev/null || need_install+=(gcc libc6-dev)
[ -e /usr/include/libxml2/libxml/parser.h ] || need_install+=(libxml2-dev)
command -v timeout >/dev/null || need_install+=(coreutils)
command -v sipp >/dev/null || need_install+=(sip-tester)
command -v ip >/dev/null || need_install+=(iproute2)
command -v unshare >/dev/null || need_install+=(util-linux)
if [ ${#need_install[@]} -gt 0 ]; then
    [ -n "${SIPE_NO_INSTALL:-}" ] && fail "missing packages: ${need_install[*]} (SIPE_NO_INSTALL is set)"
    SUDO=()
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null || fail "missing packages ${need_install[*]}, and not root to install them"
        SUDO=(sudo -n)
    fi
    log "installing ${need_install[*]}"
    timeout 300 "${SUDO[@]}" apt-get update -qq >/dev/null ||
        fail "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive timeout 600 "${SUDO[@]}" apt-get install -y -qq \
        --no-install-recommends "${need_install[@]}" >/dev/null ||
        fail "apt-get install ${need_install[*]} failed"
fi

# ---------------------------------------------------------------------------------------------
# Discovery (issue 6, point 3): a private network and mount namespace
# ---------------------------------------------------------------------------------------------
# With the `server` setting empty SIPE 1.25 finds its registrar itself (brief §2;
# core/sip-transport.c and core/sipe-lync-autodiscover.c): Lync autodiscover first
# (http://, then https:// LyncDiscoverInternal.<domain>, then the same for LyncDiscover.<domain>,
# `GET /?sipuri=<user>`, XML only, following Root/Link token="User"), then DNS SRV
# (_sipinternaltls._tcp, _sip._tls for transport tls), then A records with fixed ports
# (sipinternal:5061, sipexternal:443, sip:443), then the bare domain. It resolves names
# through the system resolver (getaddrinfo for A, res_query for SRV).
#
# So the script runs itself again inside `unshare --net --mount`: only loopback exists, and
# /etc/resolv.conf (bind-mounted) names herald's own authoritative DNS on 127.0.0.1:53. herald
# serves autodiscover on HTTPS 127.0.0.1:443 only (no plain HTTP, so SIPE's http:// attempts
# fail and the answer comes over HTTPS) and SIP over TLS on port $SIP_TLS_PORT, which is not a
# port SIPE's fixed fallbacks (5061, 443) would try: SIPE can only reach herald at all through
# what autodiscover or SRV told it. Client A takes the autodiscover path. Client B runs in a
# nested mount namespace whose /etc/hosts points the lyncdiscover names at an address where
# nothing listens, so its autodiscover fails and it must take the DNS SRV path. The debug logs
# are checked for exactly that (check_discovery).
SIP_TLS_PORT=15061
DISCOVERY=""
if [ -z "${SIPE_SERVER+set}" ]; then
    DISCOVERY=1
fi
if [ -n "$DISCOVERY" ] && [ -z "${HERALD_SIPE_NETNS:-}" ]; then
    command -v unshare >/dev/null || fail "auto-discovery needs unshare (util-linux) for a private network namespace"
    command -v ip >/dev/null || fail "auto-discovery needs ip (iproute2) to bring up loopback in the namespace"
    [ "$(id -u)" = 0 ] || fail "auto-discovery runs herald's DNS on port 53 in a private network namespace, which needs root (or set SIPE_SERVER=direct)"
    err=$(unshare --net --mount true 2>&1) ||
        fail "cannot create a private network + mount namespace (unshare --net --mount): $err"
    export HERALD_SIPE_NETNS=1
    exec unshare --net --mount --propagation private -- bash "${BASH_SOURCE[0]}" "$@"
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/herald-sipe.XXXXXX")
mkdir -p "$T/a" "$T/b" "$T/herald"
log "work dir $T"

if [ -n "$DISCOVERY" ]; then
    ip link set lo up || fail "ip link set lo up failed in the namespace"
    mkdir -p "$T/etc"
    # The resolver asks herald and nothing else; a short timeout keeps a missing answer quick.
    printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:2\n' >"$T/etc/resolv.conf"
    # No host names for the test domain: every one of them must come from herald's DNS.
    printf '127.0.0.1 localhost\n::1 localhost ip6-localhost\n' >"$T/etc/hosts"
    # B's view: the autodiscover names lead nowhere (127.0.0.2 has no listener), SRV still works.
    {
        cat "$T/etc/hosts"
        for n in LyncDiscoverInternal LyncDiscover; do
            printf '127.0.0.2 %s.%s %s.%s\n' "$n" "$DOMAIN" "${n,,}" "$DOMAIN"
        done
    } >"$T/etc/hosts.no-autodiscover"
    printf '%s\n' 'passwd: files' 'group: files' 'shadow: files' 'hosts: files dns' \
        'networks: files' 'protocols: files' 'services: files' 'ethers: files' 'rpc: files' \
        >"$T/etc/nsswitch.conf"
    for f in resolv.conf hosts nsswitch.conf; do
        mount --bind "$T/etc/$f" "/etc/$f" || fail "bind-mounting $T/etc/$f over /etc/$f in the namespace failed"
    done
    log "private network namespace: loopback only, resolver 127.0.0.1:53 (herald)"
fi

# ---------------------------------------------------------------------------------------------
# 2. The libxml2 shim (not part of the repo: built from ../shared each run)
# ---------------------------------------------------------------------------------------------
# The project's shared folder sits beside the repository; a clone elsewhere on the development
# machine finds it at /work/shared.
SHIM_REL=tools/sipe/sax1shim.c
if [ -z "${SIPE_SHIM_SRC:-}" ]; then
    SIPE_SHIM_SRC=$REPO/../shared/$SHIM_REL
    [ -e "$SIPE_SHIM_SRC" ] || SIPE_SHIM_SRC=/work/shared/$SHIM_REL
fi
SHIM_SRC=$SIPE_SHIM_SRC
[ -f "$SHIM_SRC" ] || fail "the libxml2 SAX1 shim source is not at $SHIM_SRC (set SIPE_SHIM_SRC)"
gcc -shared -fPIC -O2 -o "$T/sax1shim.so" "$SHIM_SRC" -I/usr/include/libxml2 -ldl 2>"$T/shim.err" ||
    { cat "$T/shim.err" >&2; fail "compiling $SHIM_SRC failed"; }

# ---------------------------------------------------------------------------------------------
# 3. herald
# ---------------------------------------------------------------------------------------------
if [ -z "${HERALD:-}" ]; then
    log "building herald (cargo build --release -p herald)"
    (cd "$REPO" && timeout 1800 cargo build --release -q -p herald) || fail "cargo build failed"
    HERALD=${CARGO_TARGET_DIR:-$REPO/target}/release/herald
fi
[ -x "$HERALD" ] || fail "no herald binary at $HERALD"
log "herald: $HERALD"

HCFG=$T/herald/herald.toml
if [ -n "$DISCOVERY" ]; then
    # Fixed ports: nothing else lives in the namespace.
    SIP_TCP=5060 SIP_TLS=$SIP_TLS_PORT DNS_PORT=53 WEB="" WEB_TLS_PORT=443
else
    SIP_TCP=0 SIP_TLS=0 DNS_PORT=0 WEB='"127.0.0.1:0"' WEB_TLS_PORT=0
fi
TRUSTED_LINE=""
if [ -n "${SIPE_TRUSTED:-}" ]; then
    log "SIPE_TRUSTED is set: herald trusts 127.0.0.0/8, no authentication (diagnostic mode)"
    TRUSTED_LINE='trusted_networks = ["127.0.0.0/8"]'
fi
cat >"$HCFG" <<EOF
data_dir = "data"

[sip]
domain = "$DOMAIN"
udp = []
tcp = ["127.0.0.1:$SIP_TCP"]
tls = ["127.0.0.1:$SIP_TLS"]
# SIPp (the SIMPLE client and the second endpoint) answers only the first challenge and only MD5.
digest_algorithms = ["MD5"]
${TRUSTED_LINE}
${SIPE_HERALD_SIP_TOML:-}

[dns]
listen = ["127.0.0.1:$DNS_PORT"]

[http]
admin = "127.0.0.1:0"
web = [$WEB]
web_tls = ["127.0.0.1:$WEB_TLS_PORT"]

[log]
filter = "debug"
EOF

hcli() { timeout 30 "$HERALD" --config "$HCFG" "$@"; }
hcli domain add "$DOMAIN" >/dev/null || fail "herald domain add $DOMAIN failed"
printf '%s\n' "$PASS_A" | hcli user add "sip:$USER_A" --display-name "$NAME_A" --password-stdin >/dev/null ||
    fail "herald user add $USER_A failed"
printf '%s\n' "$PASS_B" | hcli user add "sip:$USER_B" --display-name "$NAME_B" --password-stdin >/dev/null ||
    fail "herald user add $USER_B failed"

log "starting herald serve"
env -u RUST_LOG -u HERALD_CONFIG NO_COLOR=1 "$HERALD" --config "$HCFG" serve \
    >"$T/herald/stdout" 2>"$T/herald/serve.log" </dev/null &
HERALD_PID=$!
deadline=$(($(now_ms) + 20000))
until grep -qx ready "$T/herald/stdout" 2>/dev/null; do
    kill -0 "$HERALD_PID" 2>/dev/null || { cat "$T/herald/stdout" >&2; fail "herald serve exited before ready"; }
    [ "$(now_ms)" -lt "$deadline" ] || { cat "$T/herald/stdout" >&2; fail "herald serve did not print ready in 20 s"; }
    sleep 0.1
done
TLS_ADDR=$(awk '$1 == "listening" && $2 == "sip+tls" { print $3; exit }' "$T/herald/stdout")
ADMIN_ADDR=$(awk '$1 == "listening" && $2 == "admin" { print $3; exit }' "$T/herald/stdout")
TCP_ADDR=$(awk '$1 == "listening" && $2 == "sip+tcp" { print $3; exit }' "$T/herald/stdout")
[ -n "$TCP_ADDR" ] || fail "herald reported no TCP listener (SIPp's)"
[ -n "$TLS_ADDR" ] || fail "herald reported no TLS listener"
[ -n "$ADMIN_ADDR" ] || fail "herald reported no admin listener"
log "herald ready: sip+tls $TLS_ADDR, admin $ADMIN_ADDR"
# Point the CLI at the live admin listener, so contact changes go through the running server.
sed -i "s|^admin = .*|admin = \"$ADMIN_ADDR\"|" "$HCFG"

CERT=$T/herald/data/tls/cert.pem
[ -s "$CERT" ] || fail "herald generated no certificate at $CERT"

hcli contact add "$USER_A" "$USER_B" >/dev/null || fail "herald contact add $USER_A $USER_B failed"
hcli contact add "$USER_B" "$USER_A" >/dev/null || fail "herald contact add $USER_B $USER_A failed"
printf '%s\n' "$PASS_C" | hcli user add "sip:$USER_C" --display-name "$NAME_C" --password-stdin >/dev/null ||
    fail "herald user add $USER_C failed"
hcli contact add "$USER_A" "$USER_C" >/dev/null || fail "herald contact add $USER_A $USER_C failed"

# ---------------------------------------------------------------------------------------------
# 4. The two clients
# ---------------------------------------------------------------------------------------------
if [ -n "$DISCOVERY" ]; then
    SERVER=""
elif [ "${SIPE_SERVER:-}" = direct ]; then
    SERVER=$TLS_ADDR
else
    SERVER=$SIPE_SERVER
fi

xml_escape() { sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g' -e "s/'/\&apos;/g"; }

write_purple_config() { # side password
    local side=$1 password=$2 dir="$T/$1/purple" name
    mkdir -p "$dir/certificates/x509/tls_peers" "$T/$side/home"
    name=$(account_name "$side")
    # libpurple's tls_cached verifier accepts a peer whose certificate is cached under the exact
    # host string of the `server` setting (brief §4): the headless way to trust herald's
    # self-signed certificate.
    # With discovery, the host strings are the names SIPE connects to: the autodiscover hosts
    # (as SIPE spells them and as herald's links spell them), and the registrar names herald's
    # autodiscover and SRV answers give (the pool FQDN, sip.<domain>). The cache only makes the
    # certificate trusted; where SIPE connects still comes from discovery alone.
    local host
    if [ -n "$SERVER" ]; then
        cp "$CERT" "$dir/certificates/x509/tls_peers/${SERVER%%:*}"
    else
        for host in LyncDiscoverInternal lyncdiscoverinternal LyncDiscover lyncdiscover pool sip sipinternal; do
            cp "$CERT" "$dir/certificates/x509/tls_peers/$host.$DOMAIN"
        done
    fi
    cat >"$dir/accounts.xml" <<EOF
<?xml version='1.0' encoding='UTF-8' ?>
<account version='1.0'>
 <account>
  <protocol>prpl-sipe</protocol>
  <name>$(printf '%s' "$name" | xml_escape)</name>
  <password>$(printf '%s' "$password" | xml_escape)</password>
  <settings>
   <setting name='server' type='string'>$SERVER</setting>
   <setting name='transport' type='string'>tls</setting>
   <setting name='authentication' type='string'>$AUTH</setting>
   <setting name='dont-publish' type='bool'>1</setting>
  </settings>
  <settings ui='gnt-purple'>
   <setting name='auto-login' type='bool'>1</setting>
  </settings>
 </account>
</account>
EOF
    rm -f "$dir/blist.xml"
}

# The purple account name: "<sign-in address>[,<login>]" (brief §5.2).
account_name() { # side
    local login
    if [ "$1" = a ]; then login=${SIPE_LOGIN_A:-}; else login=${SIPE_LOGIN_B:-}; fi
    echo "$(side_user "$1")${login:+,$login}"
}

write_purple_config a "$PASS_A"
write_purple_config b "$PASS_B"

# One private session bus per client: libpurple owns the well-known name
# im.pidgin.purple.PurpleService, so two finch on one bus would collide.
start_bus() { # side
    local side=$1
    dbus-daemon --session --fork --nopidfile --print-address=3 --print-pid=4 \
        3>"$T/$side/dbus.addr" 4>"$T/$side/dbus.pid" || fail "dbus-daemon for $side failed"
    DBUS_PIDS+=("$(cat "$T/$side/dbus.pid")")
}
start_bus a
start_bus b
BUS_A=$(head -n1 "$T/a/dbus.addr")
BUS_B=$(head -n1 "$T/b/dbus.addr")
bus_of() { [ "$1" = a ] && echo "$BUS_A" || echo "$BUS_B"; }

# How finch starts: B, with discovery, in a nested mount namespace whose /etc/hosts sends the
# autodiscover names nowhere, so that B proves the DNS SRV path (see "Discovery" above).
finch_exec() { # side
    if [ -n "$DISCOVERY" ] && [ "$1" = b ]; then
        echo "exec unshare --mount --propagation private -- sh -c 'mount --bind $T/etc/hosts.no-autodiscover /etc/hosts && exec \"\$0\" \"\$@\"'"
    else
        echo exec
    fi
}

start_finch() { # side
    local side=$1 bus
    bus=$(bus_of "$side")
    cat >"$T/$side/finch.sh" <<EOF
#!/bin/sh
echo \$\$ > "$T/$side/finch.pid"
export HOME="$T/$side/home" DBUS_SESSION_BUS_ADDRESS="$bus" TERM=xterm
export LD_PRELOAD="$T/sax1shim.so" PURPLE_UNSAFE_DEBUG=1
unset DISPLAY WAYLAND_DISPLAY
$(finch_exec "$side") finch -c "$T/$side/purple" -d 2> "$T/$side/debug.log"
EOF
    chmod +x "$T/$side/finch.sh"
    if [ -S "$T/tmux.sock" ]; then
        tmux -S "$T/tmux.sock" new-window -d -n "$side" "$T/$side/finch.sh"
    else
        tmux -S "$T/tmux.sock" -f /dev/null new-session -d -s sipe -n "$side" -x 200 -y 50 "$T/$side/finch.sh"
    fi || fail "tmux could not start finch for $side"
}

# purple-send against one client's bus, printing just the returned value.
q() { # side method args...
    local side=$1
    shift
    DBUS_SESSION_BUS_ADDRESS=$(bus_of "$side") timeout 5 purple-send "$@" 2>/dev/null |
        awk '/method return/ { getline; print; exit }' |
        sed -E 's/^ *(int32|uint32|string|boolean) //; s/^"(.*)"$/\1/'
}

log "starting finch A ($USER_A) and finch B ($USER_B), server '${SERVER:-<auto-discovery>}'"
start_finch a
start_finch b

# Wait for each finch's D-Bus API and account.
ACC_A="" ACC_B=""
deadline=$(($(now_ms) + 20000))
while [ -z "$ACC_A" ] || [ "$ACC_A" = 0 ] || [ -z "$ACC_B" ] || [ "$ACC_B" = 0 ]; do
    [ "$(now_ms)" -lt "$deadline" ] || fail "finch's D-Bus API did not come up in 20 s (account ids: A='$ACC_A' B='$ACC_B')"
    sleep 0.2
    ACC_A=$(q a PurpleAccountsFind string:"$(account_name a)" string:prpl-sipe)
    ACC_B=$(q b PurpleAccountsFind string:"$(account_name b)" string:prpl-sipe)
done
log "finch up: account A=$ACC_A, B=$ACC_B"

wait_signed_in() { # side acc
    local side=$1 acc=$2 user deadline err
    user=$(side_user "$side")
    deadline=$(($(now_ms) + SIGNIN_TIMEOUT * 1000))
    while [ "$(q "$side" PurpleAccountIsConnected int32:"$acc")" != 1 ]; do
        err=$(fatal_error "$side")
        [ -z "$err" ] || fail "$user could not sign in: SIPE logged: $err"
        [ "$(now_ms)" -lt "$deadline" ] || fail "$user was not signed in after $SIGNIN_TIMEOUT s"
        sleep 0.2
    done
    log "$user signed in"
}

wait_signed_in a "$ACC_A"
wait_signed_in b "$ACC_B"

# The NTLM handshake must really have happened (a 200 to the unauthenticated REGISTER would
# also sign SIPE in, brief §1.2).
# What SIPE logs for NTLM: the handshake result, its own signed requests (crand/cnum/response)
# and herald's signatures (rspauth), which it verified or it would have disconnected.
check_ntlm() {
    local side user
    for side in a b; do
        user=$(side_user "$side")
        grep -a -q 'process_register_response: authentication handshake completed successfully' "$T/$side/debug.log" ||
            fail "$user is connected but SIPE logged no completed authentication handshake"
        grep -a -q -E '^Authorization: NTLM .*response="[0-9A-Fa-f]{32}"' "$T/$side/debug.log" ||
            fail "$user is connected but SIPE sent no NTLM-signed request"
        grep -a -q -E '^Authentication-Info: NTLM .*rspauth="[0-9A-Fa-f]{32}"' "$T/$side/debug.log" ||
            fail "$user is connected but herald sent no signed message (Authentication-Info rspauth)"
    done
}

# Once NTLM is up SIPE drops every unsigned message from herald without a word (brief §1.3);
# any such drop is a herald bug even when the assertions happened to pass.
check_signed() {
    local side dropped
    for side in a b; do
        dropped=$(unsigned_dropped "$T/$side/debug.log")
        [ -z "$dropped" ] || fail "SIPE ($(side_user "$side")) dropped unsigned messages from herald:
$dropped"
    done
}

# How each client found herald (issue 6, point 3), from its debug log (the lines SIPE 1.25
# writes in sipe-lync-autodiscover.c, sip-transport.c and libpurple's dnssrv.c). Every SIP
# connection must go to the host and port discovery produced; herald's TLS port is one no
# fixed fallback would try, so no other way in exists.
sip_connections() { # side: "host:port" of every SIP connection SIPE opened
    grep -a -o -E "sip_transport_connected: '[^']+'" "$T/$1/debug.log" 2>/dev/null |
        sed -E "s/^[^']*'([^']+)'$/\1/"
}

check_only_connections_to() { # side host:port how
    local side=$1 want=$2 how=$3 conns c
    conns=$(sip_connections "$side")
    [ -n "$conns" ] || fail "$(side_user "$side"): SIPE logged no SIP connection"
    for c in $conns; do
        [ "$c" = "$want" ] || fail "$(side_user "$side") opened a SIP connection to $c, not to $want from $how"
    done
}

check_discovery() {
    local f="$T/a/debug.log" user=$USER_A fqdn port doc
    # A: autodiscover over HTTPS. SIPE asks http:// first, which has no listener here.
    grep -a -q -F "sipe_lync_autodiscover_request: trying 'https://LyncDiscoverInternal.$DOMAIN/?sipuri=$user'" "$f" ||
        fail "$user did not try autodiscover at https://LyncDiscoverInternal.$DOMAIN/"
    grep -a -q -E "sipe_lync_autodiscover_parse: user https://lyncdiscoverinternal\.$DOMAIN/Autodiscover/AutodiscoverService\.svc/root/user\?sipuri=$user\$" "$f" ||
        fail "$user did not follow the root document's User link (herald's autodiscover root answer was not accepted)"
    grep -a -q 'lync_autodiscover_cb: got server list' "$f" ||
        fail "$user's autodiscover produced no server list"
    # The user document herald served (SIPE logs HTTP bodies in unsafe debug mode); its
    # SipClientInternalAccess is where A must have connected.
    doc=$(grep -a -o -E '<SipClientInternalAccess fqdn="[^"]+" port="[0-9]+"/>' "$f" | head -n1)
    [ -n "$doc" ] || fail "$user's debug log holds no autodiscover user document with SipClientInternalAccess"
    fqdn=$(sed -E 's/.*fqdn="([^"]+)".*/\1/' <<<"$doc")
    port=$(sed -E 's/.*port="([0-9]+)".*/\1/' <<<"$doc")
    [ "$port" = "$SIP_TLS_PORT" ] ||
        fail "autodiscover gave $user port $port, but herald's TLS listener is on $SIP_TLS_PORT"
    grep -a -q -F "transport_connect - hostname: $fqdn port: $port" "$f" ||
        fail "$user did not connect to the autodiscovered registrar $fqdn:$port"
    if grep -a -q 'dnssrv: querying SRV' "$f"; then
        fail "$user queried DNS SRV although autodiscover answered: $(grep -a -m1 'dnssrv: querying SRV' "$f")"
    fi
    check_only_connections_to a "$fqdn:$port" "autodiscover"
    log "discovery: $user found herald through autodiscover over HTTPS (https://LyncDiscoverInternal.$DOMAIN/ -> User link -> SipClientInternalAccess $fqdn:$port)"

    # B: autodiscover leads nowhere, then DNS SRV answered by herald's DNS.
    f="$T/b/debug.log" user=$USER_B
    grep -a -q 'no Lync Autodiscover servers found; trying SRV records next' "$f" ||
        fail "$user did not fall back from autodiscover to DNS SRV"
    grep -a -q -F "dnssrv: querying SRV record for $DOMAIN: _sipinternaltls._tcp.$DOMAIN" "$f" ||
        fail "$user did not query _sipinternaltls._tcp.$DOMAIN"
    doc=$(grep -a -o -E 'sipe_core_dns_resolved - SRV hostname: [^ ]+ port: [0-9]+' "$f" | head -n1)
    [ -n "$doc" ] || fail "$user got no SRV answer from herald's DNS for _sipinternaltls._tcp.$DOMAIN"
    fqdn=$(awk '{ print $5 }' <<<"$doc")
    port=$(awk '{ print $7 }' <<<"$doc")
    [ "$port" = "$SIP_TLS_PORT" ] ||
        fail "herald's SRV answer gave $user port $port, but herald's TLS listener is on $SIP_TLS_PORT"
    check_only_connections_to b "$fqdn:$port" "the SRV answer"
    log "discovery: $user found herald through DNS SRV (_sipinternaltls._tcp.$DOMAIN -> $fqdn:$port, A $fqdn from herald's DNS)"
}

[ -z "$DISCOVERY" ] || check_discovery

NTLM=""
[ "$AUTH" = ntlm ] && [ -z "${SIPE_TRUSTED:-}" ] && NTLM=1
if [ -n "$NTLM" ]; then
    check_ntlm
    log "NTLM: handshake completed, SIPE signs its requests and verifies herald's signatures"
fi

# ---------------------------------------------------------------------------------------------
# 5. Presence both ways (issue 6, point 4)
# ---------------------------------------------------------------------------------------------

# The status id (purple side) a client shows for a buddy, "" while the buddy is unknown.
buddy_status() { # side acc buddy-uri
    local side=$1 acc=$2 uri=$3 b p s
    b=$(q "$side" PurpleFindBuddy int32:"$acc" string:"$uri")
    [ -n "$b" ] && [ "$b" != 0 ] || return 0
    p=$(q "$side" PurpleBuddyGetPresence int32:"$b")
    [ -n "$p" ] && [ "$p" != 0 ] || return 0
    s=$(q "$side" PurplePresenceGetActiveStatus int32:"$p")
    [ -n "$s" ] && [ "$s" != 0 ] || return 0
    q "$side" PurpleStatusGetId int32:"$s"
}

own_status() { # side acc
    local s
    s=$(q "$1" PurpleAccountGetActiveStatus int32:"$2")
    [ -n "$s" ] && [ "$s" != 0 ] && q "$1" PurpleStatusGetId int32:"$s"
}

# Waits until `side` shows `uri` with status `want`, at most `secs` after `start` (epoch ms,
# default now). Polls with one D-Bus call (PurplePresenceIsStatusActive on the buddy's cached
# presence) so that polling adds little to the measured time; the ids are looked up again when
# the buddy is missing or was re-created.
await_buddy_status() { # side acc uri want timeout-seconds what [start-ms]
    local side=$1 acc=$2 uri=$3 want=$4 secs=$5 what=$6 start=${7:-} deadline got="" b="" p="" active
    [ -n "$start" ] || start=$(now_ms)
    deadline=$((start + secs * 1000))
    while :; do
        if [ -z "$p" ] || [ "$p" = 0 ]; then
            b=$(q "$side" PurpleFindBuddy int32:"$acc" string:"$uri")
            [ -n "$b" ] && [ "$b" != 0 ] && p=$(q "$side" PurpleBuddyGetPresence int32:"$b")
        fi
        if [ -n "$p" ] && [ "$p" != 0 ]; then
            active=$(q "$side" PurplePresenceIsStatusActive int32:"$p" string:"$want")
            [ "$active" = 1 ] && break
            [ -n "$active" ] || p=""
        fi
        if [ "$(now_ms)" -ge "$deadline" ]; then
            got=$(buddy_status "$side" "$acc" "$uri")
            fail "$what: $(side_user "$side") shows $uri as '${got:-<no such buddy>}', expected '$want' within $secs s"
        fi
        sleep 0.02
    done
    local since="the check began"
    [ -n "${7:-}" ] && since="its publication"
    log "$what: $(side_user "$side") shows $uri '$want' $(($(now_ms) - start)) ms after $since"
}

# The user-state publications SIPE sent (SERVICE, application/msrtc-category-publish+xml), one
# line each: "<UTC time it was written> <availability>".
publications() { # side
    awk '
        /MESSAGE START >>>>>>>>>>/ { ts = $NF; inmsg = 1; first = 1; service = 0; next }
        /MESSAGE END/              { inmsg = 0; next }
        inmsg && first             { first = 0; service = ($1 == "SERVICE"); next }
        inmsg && service && match($0, /xsi:type="userState"><availability>[0-9]+/) {
            a = substr($0, RSTART, RLENGTH); sub(/.*>/, "", a); print ts, a; service = 0
        }
    ' "$T/$1/debug.log" 2>/dev/null
}

# Waits for SIPE on `side` to publish availability `want` after the `before`-th publication;
# prints the epoch ms at which it went on the wire. SIPE defers a user's status change by
# 1-2 s before publishing it (purple's "defer status update"), so "B sees it within 1 s" is
# measured from this moment, not from the status switch.
await_publication() { # side want before
    local side=$1 want=$2 before=$3 deadline line ts avail
    deadline=$(($(now_ms) + 5000))
    while :; do
        line=$(publications "$side" | sed -n "$((before + 1)),\$p" | awk -v w="$want" '$2 == w { print; exit }')
        if [ -n "$line" ]; then
            ts=${line%% *}
            date -u -d "$ts" +%s%3N 2>/dev/null || now_ms
            return 0
        fi
        if [ "$(now_ms)" -ge "$deadline" ]; then
            avail=$(publications "$side" | sed -n "$((before + 1)),\$p" | awk '{ print $2 }' | tr '\n' ' ')
            fail "$(side_user "$side") did not publish availability $want within 5 s (published since: ${avail:-nothing})"
        fi
        sleep 0.05
    done
}

# Contact lists come from herald (roaming contacts): each side must see the other.
await_buddy_status b "$ACC_B" "sip:$USER_A" available 15 "initial presence"
await_buddy_status a "$ACC_A" "sip:$USER_B" available 15 "initial presence"

# Contact cards carry the directory's display name.
check_alias() { # side acc uri want
    local b alias
    b=$(q "$1" PurpleFindBuddy int32:"$2" string:"$3")
    alias=$(q "$1" PurpleBuddyGetAlias int32:"$b")
    [ "$alias" = "$4" ] || fail "$(side_user "$1") shows $3 as '$alias', expected the directory's display name '$4'"
    log "$(side_user "$1") shows $3 as '$alias'"
}
check_alias b "$ACC_B" "sip:$USER_A" "$NAME_A"
check_alias a "$ACC_A" "sip:$USER_B" "$NAME_B"

PRESENCE_A=$(q a PurpleAccountGetPresence int32:"$ACC_A")
[ -n "$PRESENCE_A" ] && [ "$PRESENCE_A" != 0 ] || fail "no presence object for account A"

set_status() { # side presence status-id
    DBUS_SESSION_BUS_ADDRESS=$(bus_of "$1") timeout 5 purple-send PurplePresenceSwitchStatus \
        int32:"$2" string:"$3" >/dev/null 2>&1 || fail "purple-send PurplePresenceSwitchStatus $3 failed"
}

# The availability SIPE publishes for each status it lets a user choose (brief §3.5).
availability_of() {
    case $1 in
        available) echo 3500 ;; busy) echo 6500 ;; do-not-disturb) echo 9500 ;;
        be-right-back) echo 12500 ;; away) echo 15500 ;; *) echo "?" ;;
    esac
}

# One status change on `from`, seen by `to` within STATUS_TIMEOUT of its publication.
status_step() { # from from-acc from-presence from-user to to-acc status
    local from=$1 from_acc=$2 from_presence=$3 from_user=$4 to=$5 to_acc=$6 status=$7 before mine t0
    before=$(publications "$from" | wc -l)
    set_status "$from" "$from_presence" "$status"
    mine=$(own_status "$from" "$from_acc")
    [ "$mine" = "$status" ] || fail "$(side_user "$from")'s own status is '$mine' after switching to '$status'"
    t0=$(await_publication "$from" "$(availability_of "$status")" "$before") || exit 1
    await_buddy_status "$to" "$to_acc" "sip:$from_user" "$status" "$STATUS_TIMEOUT" \
        "$(side_user "$from") sets $status" "$t0"
}

# A changes status; B must show it within STATUS_TIMEOUT of A's publication. B maps the
# availability band back to the same status id (brief §3.5).
# Lync's "Off Work" (Away band + off-work token) has no SIPE status to set: not covered here.
for status in busy do-not-disturb be-right-back away available; do
    status_step a "$ACC_A" "$PRESENCE_A" "$USER_A" b "$ACC_B" "$status"
done

# The other direction: B's changes reach A.
PRESENCE_B=$(q b PurpleAccountGetPresence int32:"$ACC_B")
[ -n "$PRESENCE_B" ] && [ "$PRESENCE_B" != 0 ] || fail "no presence object for account B"
for status in busy available; do
    status_step b "$ACC_B" "$PRESENCE_B" "$USER_B" a "$ACC_A" "$status"
done

# ---------------------------------------------------------------------------------------------
# 6. Off Work (issue 6, point 4): SIPE has no such status (its statuses are available, busy,
#    do-not-disturb, be-right-back, away, offline, invisible; sipe-status.c knows no off-work
#    token), so a second endpoint of A that is not SIPE publishes it the way Lync 2013 does:
#    SIPp, authenticated with Digest, sends a SERVICE with A's manual userState 15500 + activity
#    token off-work (tests/sipp/lync_user_state.xml). SIPE maps every availability in
#    15000-17999 to "away" whatever the token (sipe_ocs2007_status_from_legacy_availability),
#    so B must show A away, and the categories herald sent B must carry the off-work token.
# ---------------------------------------------------------------------------------------------

# Runs one SIPp scenario from tests/sipp against herald's TCP listener, in its own folder under
# $T/sipp/<name> (message trace and error log there). Foreground unless the caller adds `&`;
# bounded by SIPp's -timeout and by timeout(1). SIPp computes every Digest response for the
# one URI given (`auth-uri`, without "sip:"), so a scenario addresses one Request-URI.
run_sipp() { # name scenario user password auth-uri seconds extra-sipp-args...
    local name=$1 scenario=$2 user=$3 password=$4 auth_uri=$5 secs=$6
    shift 6
    mkdir -p "$T/sipp/$name"
    (cd "$T/sipp/$name" && exec timeout $((secs + 5)) sipp "$TCP_ADDR" \
        -sf "$REPO/tests/sipp/$scenario" -t t1 -i 127.0.0.1 -m 1 \
        -s "$user" -au "$user" -ap "$password" -auth_uri "$auth_uri" -key user_domain "$DOMAIN" \
        -nostdin -trace_err -trace_msg -timeout "${secs}s" -timeout_error -recv_timeout 10000 \
        "$@" >"$T/sipp/$name/stdout" 2>&1 </dev/null)
}

# What SIPp logged for a failed run.
sipp_story() { # name
    local f
    for f in "$T/sipp/$1"/*_errors.log "$T/sipp/$1"/*_messages.log "$T/sipp/$1/stdout"; do
        [ -f "$f" ] || continue
        echo "--- $f (tail)"
        tail -n 60 "$f"
    done
}

# Messages SIPE received (unsafe debug) whose body has `pattern`, counted.
received_with() { # side pattern
    awk -v pat="$2" '
        /MESSAGE START <<<<<<<<<</ { inmsg = 1; next }
        /MESSAGE END/              { inmsg = 0; next }
        inmsg && index($0, pat)    { n++ }
        END                        { print n + 0 }
    ' "$T/$1/debug.log" 2>/dev/null
}

# When SIPp received each 200 to a request of `method` (epoch ms, one a line), from its trace.
sipp_200_times() { # name method
    cat "$T/sipp/$1"/*_messages.log 2>/dev/null | awk -v m="$2" '
        /^-----------------------------------------------  *[0-9]/ { ts = $2 " " $3; state = 0; next }
        state == 0 && / message received / { state = 1; next }
        state == 1 && /^SIP\/2\.0 200/ { state = 2; next }
        state == 1 && NF { state = 9; next }
        state == 2 && /^CSeq:/ { sub(/\r$/, ""); if ($3 == m) print ts; state = 9 }
    ' | while read -r d; do date -d "$d" +%s%3N; done
}
sipp_last_200() { sipp_200_times "$@" | tail -n1; } # name method

offwork_before=$(received_with b 'token="off-work"')
log "Off Work: a second endpoint of $USER_A (SIPp, Digest) publishes userState 15500 + off-work"
t0=$(now_ms)
run_sipp offwork lync_user_state.xml "${USER_A%@*}" "$PASS_A" "$USER_A" 20 -key availability 15500 -key token off-work ||
    fail "the second endpoint's Off Work publication failed (SIPp):
$(sipp_story offwork)"
t_pub=$(sipp_last_200 offwork SERVICE)
[ -n "$t_pub" ] || fail "the second endpoint's SIPp trace shows no 200 to its SERVICE:
$(sipp_story offwork)"
await_buddy_status b "$ACC_B" "sip:$USER_A" away "$STATUS_TIMEOUT" "$USER_A's other endpoint sets Off Work" "$t_pub"
[ "$(received_with b 'token="off-work"')" -gt "$offwork_before" ] ||
    fail "$USER_B shows $USER_A away, but no presence document herald sent it carried the off-work token"
log "Off Work: $USER_B's SIPE got A's state with token off-work and shows A '$(buddy_status b "$ACC_B" "sip:$USER_A")' ($(($(now_ms) - t0)) ms after SIPp started, Digest round trips included)"
log "Off Work: $USER_A's own SIPE now shows itself '$(own_status a "$ACC_A")'"

# ---------------------------------------------------------------------------------------------
# 7. A SIMPLE client and SIPE (issue 6, point 4): carol, played by SIPp with Digest over TCP.
#    Her PIDF publications (RFC 3863 + RFC 4480 activities: busy, then away, then removed) must
#    show in A's SIPE as busy, away, offline; and A's SIPE status changes must reach her
#    subscription (Accept: application/pidf+xml) as PIDF NOTIFYs with the right basic status and
#    activity, A's sign-out as <basic>closed</basic>.
# ---------------------------------------------------------------------------------------------

# The NOTIFYs a SIPp run received, one a line: "<date> <time>|<body on one line>".
sipp_notifies() { # name
    cat "$T/sipp/$1"/*_messages.log 2>/dev/null | awk '
        function flush() { if (notify) print ts "|" body; notify = 0 }
        /^-----------------------------------------------  *[0-9]/ { flush(); ts = $2 " " $3; state = 0; next }
        state == 0 && / message received / { state = 1; next }
        state == 1 && /^NOTIFY / { notify = 1; state = 2; body = ""; next }
        state == 1 && NF { state = 9; next }
        state == 2 { sub(/\r$/, ""); if ($0 == "") state = 3; next }
        state == 3 { sub(/\r$/, ""); body = body $0; next }
        END { flush() }
    '
}

# Waits for a NOTIFY after the `before`-th whose PIDF body has every `want` (an extended regular
# expression) and no `unwanted` one; prints its receive time (epoch ms). Fails naming `what`.
await_simple_notify() { # name before secs what unwanted-regex want-regex...
    local name=$1 before=$2 secs=$3 what=$4 unwanted=$5 deadline line body ok w
    shift 5
    deadline=$(($(now_ms) + secs * 1000))
    while :; do
        while IFS= read -r line; do
            body=${line#*|}
            ok=1
            for w in "$@"; do
                grep -q -E -e "$w" <<<"$body" || ok=""
            done
            if [ -n "$ok" ] && [ -n "$unwanted" ] && grep -q -E -e "$unwanted" <<<"$body"; then ok=""; fi
            if [ -n "$ok" ]; then
                date -d "${line%%|*}" +%s%3N
                return 0
            fi
        done < <(sipp_notifies "$name" | sed -n "$((before + 1)),\$p")
        if [ "$(now_ms)" -ge "$deadline" ]; then
            fail "$what: the SIMPLE watcher got no PIDF NOTIFY matching '$*'${unwanted:+ without '$unwanted'} within $secs s; its NOTIFY bodies since:
$(sipp_notifies "$name" | sed -n "$((before + 1)),\$p")
$(sipp_story "$name")"
        fi
        sleep 0.05
    done
}

notify_count() { sipp_notifies "$1" | wc -l; }

log "SIMPLE: $USER_C (SIPp, Digest) subscribes to $USER_A's presence as PIDF"
run_sipp watch simple_watcher.xml "${USER_C%@*}" "$PASS_C" "$USER_A" 120 -key presentity "$USER_A" &
WATCH_PID=$!
# A is Off Work now (the second endpoint's state): open, away, with the off-work token.
await_simple_notify watch 0 10 "$USER_C's first NOTIFY for $USER_A (Off Work)" "" \
    '<basic>open</basic>' 'away' 'off-work' >/dev/null || exit 1
log "SIMPLE: $USER_C's first NOTIFY shows $USER_A open + away + off-work: $(sipp_notifies watch | tail -n1 | cut -d'|' -f2- | grep -o -E '<basic>[a-z]+</basic>|<[a-z]*:?activities>.*</[a-z]*:?activities>' | tr -d '\n')"

log "SIMPLE: $USER_C publishes PIDF busy, then away, then removes her publication"
run_sipp publish simple_publisher.xml "${USER_C%@*}" "$PASS_C" "$USER_C" 20 &
PUBLISH_PID=$!
# Each state lasts 3 s (the scenario's pauses). The waits are longer, so a loaded machine does
# not fail them, but each state is only visible in its own window: a missed one still fails.
seen=()
for step in "busy 5 publishes PIDF busy" "away 6 publishes PIDF away" "offline 6 removes her publication"; do
    read -r want secs what <<<"$step"
    await_buddy_status a "$ACC_A" "sip:$USER_C" "$want" "$secs" "$USER_C $what"
    seen+=("$(now_ms)")
done
wait "$PUBLISH_PID" || fail "the SIMPLE publisher (SIPp) failed:
$(sipp_story publish)"
PUBLISH_PID=""
# Each state must have shown within STATUS_TIMEOUT of the 200 to its PUBLISH.
mapfile -t published < <(sipp_200_times publish PUBLISH)
[ "${#published[@]}" = 3 ] || fail "the SIMPLE publisher's trace shows ${#published[@]} PUBLISH 200s, expected 3:
$(sipp_story publish)"
for i in 0 1 2; do
    [ $((seen[i] - published[i])) -le $((STATUS_TIMEOUT * 1000)) ] ||
        fail "$USER_A's SIPE showed $USER_C's PIDF publication $((i + 1)) $((seen[i] - published[i])) ms after herald accepted it (limit ${STATUS_TIMEOUT} s)"
done
log "SIMPLE: $USER_A's SIPE showed $USER_C busy, away, offline $((seen[0] - published[0])), $((seen[1] - published[1])), $((seen[2] - published[2])) ms after herald accepted each PUBLISH"

# A's status changes reach carol as PIDF, within STATUS_TIMEOUT of A's publication.
simple_step() { # status unwanted want...
    local status=$1 unwanted=$2 before n0 t0 t1
    shift 2
    before=$(publications a | wc -l)
    n0=$(notify_count watch)
    set_status a "$PRESENCE_A" "$status"
    t0=$(await_publication a "$(availability_of "$status")" "$before") || exit 1
    t1=$(await_simple_notify watch "$n0" 5 "$USER_A sets $status" "$unwanted" "$@") || exit 1
    [ $((t1 - t0)) -le $((STATUS_TIMEOUT * 1000)) ] ||
        fail "$USER_A sets $status: the SIMPLE watcher's PIDF NOTIFY came $((t1 - t0)) ms after the publication (limit ${STATUS_TIMEOUT} s)"
    log "$USER_A sets $status: $USER_C (SIMPLE) got PIDF $* $((t1 - t0)) ms after its publication"
}
simple_step busy 'away|off-work' '<basic>open</basic>' ':busy/>'
simple_step available 'busy/>|away/>|off-work' '<basic>open</basic>'

# A signs out: B must show A offline.
closed_before=$(notify_count watch)
DBUS_SESSION_BUS_ADDRESS=$BUS_A timeout 5 purple-send PurpleAccountSetEnabled \
    int32:"$ACC_A" string:gnt-purple int32:0 >/dev/null 2>&1 || fail "disabling account A failed"
await_buddy_status b "$ACC_B" "sip:$USER_A" offline "$SIGNOUT_TIMEOUT" "A signs out"
online=$(q b PurplePresenceIsOnline int32:"$(q b PurpleBuddyGetPresence int32:"$(q b PurpleFindBuddy int32:"$ACC_B" string:"sip:$USER_A")")")
[ "$online" = 0 ] || fail "B still reports A online after A signed out"
# ... and the SIMPLE watcher gets <basic>closed</basic>, after which its scenario ends.
await_simple_notify watch "$closed_before" 10 "A signs out" "" '<basic>closed</basic>' >/dev/null || exit 1
wait "$WATCH_PID" || fail "the SIMPLE watcher (SIPp) failed:
$(sipp_story watch)"
WATCH_PID=""
log "A signs out: $USER_C (SIMPLE) got PIDF <basic>closed</basic>"

[ -z "$NTLM" ] || check_signed

if [ -n "${SIPE_TRUSTED:-}" ]; then
    log "PASS (diagnostic mode, no authentication): sign-in over TLS, contact lists, display names and presence both ways"
else
    log "PASS: ${DISCOVERY:+auto-discovery (autodiscover over HTTPS, DNS SRV), }NTLM sign-in over TLS, contact lists, display names, presence both ways, Off Work from a second endpoint, SIMPLE (PIDF) both ways"
fi
exit 0
