#!/usr/bin/env bash
# Hostile TLS clients against the two servers that hold the key's handle:
# kpsa serve (libkpsa's PSK callback) and an unmodified openssl s_server
# with the kpsa provider. hostile.py writes the records by hand: a
# ClientKeyExchange with identities no TLS library would send (empty, 129
# to 65535 bytes split over several records, NUL bytes, bytes that are not
# UTF-8, control characters and ANSI escapes, a length field that lies,
# trailing bytes), flights cut at every message, a silent peer and one that
# sends a byte every few seconds, and TLS 1.3 ClientHellos whose
# pre_shared_key carries such identities. Each case is a fresh connection.
# A case passes when the server answers with the fatal alert expected
# (kpsa serve: unknown_psk_identity, 115, for an identity it does not hold
# or that is no KpsaId), closes, is still running, and at once serves a
# good handshake of an independent client (openssl s_client with the raw
# key); and at the end when neither server wrote a raw control byte or a
# byte above 0x7e to its stdout or stderr, and kpsa serve wrote exactly
# one "kpsa: PEER: reason" line per failed connection.
#
# What libssl (3.0) does before kpsa's callback is seen: an identity of
# more than 256 bytes (PSK_MAX_IDENTITY_LEN) is a decode_error (50); a
# ClientKeyExchange of more than 2048 bytes (identity over 2046 bytes) an
# illegal_parameter (47) as soon as its header arrives; and an identity is
# cut at its first NUL (PACKET_strndup), so its callback would see
# "dev-01@example.com" for "dev-01@example.com\0junk": libkpsa reads the
# identity's bytes in the ClientKeyExchange first and refuses it, and in
# TLS 1.3 does not let libssl fall back to the TLS 1.2 callback. kpsa serve
# ends a handshake that has not finished within 10 s, however slowly the
# peer sends.
here=$(dirname "$0")
# shellcheck source=tests/lib.sh
. "$here/lib.sh"
KPSA=${KPSA:-build/tools/kpsa}
KPSA_PROVIDER=$(realpath "${KPSA_PROVIDER:-build/provider/kpsa.so}")
export KPSA_PROVIDER
HOSTILE=$here/hostile.py

setup_token
umask 077
ID=dev-01@example.com
openssl rand -hex 32 >"$WORK/key"
KEY=$(cat "$WORK/key")
"$KPSA" import "$ID" --in "$WORK/key" || { echo "Bail out! import"; exit 1; }
HANDLE=$("$KPSA" handle "$ID")
python3 "$HOSTILE" selftest >/dev/null || { echo "Bail out! hostile.py"; exit 1; }

SERVE_PID=
SRV_PID=
HOLD_PID=
BG_PID=
stop_pid() {
    local var=$1 pid=${!1}
    STOP_RC=
    [ -n "$pid" ] || return 0
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    STOP_RC=$?
    printf -v "$var" '%s' ''
}
trap 'stop_pid BG_PID; stop_pid SERVE_PID; stop_pid SRV_PID;
    stop_pid HOLD_PID; cleanup' EXIT

# hex TEXT: TEXT's bytes in hex.
hex() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }

# Servers write to these (opened for appending, so that a reader may
# count what is new); OUT and ERR name the current server's files.
# start_kpsa NAME ARGS...: kpsa serve on a free port ($PORT).
start_kpsa() {
    local name=$1
    shift
    PORT=$(free_port)
    OUT=$WORK/$name.out ERR=$WORK/$name.err
    : >"$OUT"
    : >"$ERR"
    timeout 300 "$KPSA" serve --listen "127.0.0.1:$PORT" "$@" >>"$OUT" \
        2>>"$ERR" &
    SERVE_PID=$!
    SPID=$SERVE_PID
    for _ in $(seq 100); do
        grep -q '^kpsa: listening' "$ERR" && return 0
        kill -0 "$SERVE_PID" 2>/dev/null || break
        sleep 0.05
    done
    return 1
}

# start_s_server: openssl s_server with kpsa, the handle for $ID, any
# number of connections one after the other. Its standard input is a FIFO
# held open (it ends a connection when its input closes).
start_s_server() {
    PORT=$(free_port)
    OUT=$WORK/s_server.out ERR=$WORK/s_server.err
    : >"$OUT"
    : >"$ERR"
    write_openssl_cnf
    rm -f "$WORK/srv.in"
    mkfifo "$WORK/srv.in"
    OPENSSL_CONF=$OPENSSL_CONF_KPSA timeout 300 openssl s_server \
        -accept "127.0.0.1:$PORT" -nocert -psk "$HANDLE" -psk_identity "$ID" \
        -cipher PSK-AES128-CBC-SHA256 -tls1_2 -quiet \
        <"$WORK/srv.in" >>"$OUT" 2>>"$ERR" &
    SRV_PID=$!
    SPID=$SRV_PID
    timeout 300 sleep 300 >"$WORK/srv.in" &
    # shellcheck disable=SC2034 # stopped by name: stop_pid HOLD_PID
    HOLD_PID=$!
    for _ in $(seq 100); do
        ss -H -ltn "sport = :$PORT" | grep -q . && return 0
        sleep 0.05
    done
    return 1
}

# good: the server is running and an openssl s_client holding the raw key
# gets through at once: kpsa serve echoes its line and binds the
# association; s_server prints the line. GOOD_S: how long it took.
GOOD_N=0
good() {
    local line t0 tls=${1:--tls1_2}
    GOOD_N=$((GOOD_N + 1))
    line="good-$GOOD_N-$$"
    kill -0 "$SPID" 2>/dev/null || { GOOD_WHY="server is gone"; return 1; }
    t0=$(date +%s%N)
    (echo "$line"; sleep 0.3) | timeout 10 openssl s_client -brief \
        -connect "127.0.0.1:$PORT" -psk "$KEY" -psk_identity "$ID" \
        "$tls" >"$WORK/good.out" 2>&1
    GOOD_S=$((($(date +%s%N) - t0) / 1000000))
    GOOD_S=$((GOOD_S / 1000)).$(printf '%03d' $((GOOD_S % 1000)))
    for _ in $(seq 40); do
        grep -qx -- "$line" "$OUT" && return 0
        [ "$SPID" = "$SERVE_PID" ] && grep -qx -- "$line" "$WORK/good.out" &&
            grep -q "credential-id=12-$ID" "$OUT" && return 0
        sleep 0.05
    done
    GOOD_WHY="no good handshake: $(tr '\n' ' ' <"$WORK/good.out" | cut -c1-200)"
    return 1
}

# hostile WHO DESC WANT ARGS...: one hostile.py cke connection. WANT is
# the alert the server must send: LEVEL.DESC (e.g. 2.115), or "fatal" for
# any fatal alert; the server must close and then serve a good handshake.
FAILED_CONNS=0
hostile() {
    local who=$1 desc=$2 want=$3 got alert closed why=
    shift 3
    got=$(timeout 60 python3 "$HOSTILE" cke --port "$PORT" "$@")
    FAILED_CONNS=$((FAILED_CONNS + 1))
    alert=$(sed -n 's/.* alert=\([^ ]*\).*/\1/p' <<<"$got")
    closed=$(sed -n 's/.* closed=\([^ ]*\).*/\1/p' <<<"$got")
    case $want in
    fatal) [[ $alert == 2.* ]] || why="no fatal alert" ;;
    *) [ "$alert" = "$want" ] || why="alert $alert, wanted $want" ;;
    esac
    [ "$closed" = 1 ] || why="$why; the server did not close"
    good || why="$why; $GOOD_WHY"
    if [ -z "$why" ]; then
        ok "$who: $desc: alert $alert at ${got%% *}, closed; next handshake good"
    else
        not_ok "$who: $desc: ${why#; }"
        echo "# hostile.py: $got"
    fi
}

# clean WHO: the server's stdout and stderr hold no raw control byte (only
# \n) and no byte from 0x7f up.
clean() {
    local f bad=0
    for f in "$OUT" "$ERR"; do
        if LC_ALL=C grep -naP '[\x00-\x09\x0b-\x1f\x7f-\xff]' "$f" \
            >"$WORK/raw" 2>/dev/null; then
            bad=1
            echo "# raw bytes in $(basename "$f"):"
            head -5 "$WORK/raw" | od -c | head -20 | sed 's/^/#   /'
        fi
    done
    check "$1: stdout and stderr hold no raw control or high byte" \
        [ "$bad" = 0 ]
}

# identities WHO WANT_UNKNOWN WANT_TRAILING: the ClientKeyExchange cases
# shared by both servers; WANT_UNKNOWN is the alert for an identity the
# server does not take (kpsa serve: 115; s_server takes any identity with
# its one key, so our random key fails at Finished: bad_record_mac, 20),
# WANT_TRAILING the one for bytes after an unknown identity (kpsa serve:
# 115, its callback comes first; s_server: decode_error, 50).
identities() {
    local who=$1 u=$2 t=$3
    hostile "$who" "empty identity" "$u" --identity ""
    local n
    for n in 129 256; do
        hostile "$who" "identity of $n bytes" "$u" --identity a@example.com \
            --repeat "$n"
    done
    # libssl: more than PSK_MAX_IDENTITY_LEN (256), before any callback.
    for n in 257 1000 2046; do
        hostile "$who" "identity of $n bytes" 2.50 --identity a@example.com \
            --repeat "$n"
    done
    # libssl: a ClientKeyExchange of more than 2048 bytes, from its header.
    hostile "$who" "identity of 2047 bytes" 2.47 --identity a@example.com \
        --repeat 2047
    hostile "$who" "identity of 65535 bytes in 5 records" 2.47 \
        --identity a@example.com --repeat 65535
    hostile "$who" "identity of 65535 bytes in 1000-byte records" 2.47 \
        --identity a@example.com --repeat 65535 --fragment 1000
    # NUL: libssl cuts the identity at the first one. A random key then
    # fails at Finished, whichever part the server looked up.
    hostile "$who" "'dev-01@example.com\\0junk', a random key" fatal \
        --identity-hex "$(hex "$ID")00$(hex junk)"
    hostile "$who" "'\\0'" "$u" --identity-hex 00
    hostile "$who" "'dev\\0-01@example.com'" "$u" \
        --identity-hex "$(hex dev)00$(hex -01@example.com)"
    hostile "$who" "bytes that are not UTF-8" "$u" \
        --identity-hex "fffec328$(hex @)e9$(hex xample.com)"
    hostile "$who" "ESC[31m, CR, LF and DEL in the identity" "$u" \
        --identity-hex "1b5b33316d$(hex dev-01)0d0a7f$(hex @example.com)1b5b306d"
    hostile "$who" "a valid KpsaId the token does not hold" "$u" \
        --identity nobody@example.com
    hostile "$who" "the known KpsaId in another case" "$u" \
        --identity DEV-01@example.com
    hostile "$who" "length field 10 more than the bytes" 2.50 \
        --identity "$ID" --length-delta 10
    hostile "$who" "length field 65535, 18 bytes follow" 2.50 \
        --identity "$ID" --length-delta $((65535 - ${#ID}))
    hostile "$who" "trailing bytes after an unknown identity" "$t" \
        --identity nobody@example.com --trailing-hex 1b5b324a00ff
    hostile "$who" "trailing bytes after the known identity" 2.50 \
        --identity "$ID" --trailing-hex 1b5b324a00ff
    hostile "$who" "the known identity and a wrong key" 2.20 --identity "$ID"
}

# cuts WHO: flights cut at every message, then closed (or reset): the
# next good handshake comes at once (s_client done in under 3 s, 0.3 s of
# which is its own wait for the echo).
cuts() {
    local who=$1 at after got why
    for at in ch:0 ch:3 ch:5 ch:7 ch:9 ch:60 ch cke:3 cke:5 cke:8 cke:20 \
        ccs fin:5 fin:40 ch/rst ccs/rst; do
        after=close
        [[ $at == */rst ]] && after=rst && at=${at%/rst}
        got=$(timeout 30 python3 "$HOSTILE" cut --port "$PORT" --at "$at" \
            --then "$after" --identity "$ID" --key "$KEY")
        FAILED_CONNS=$((FAILED_CONNS + 1))
        why=
        good || why=$GOOD_WHY
        if [ -z "$why" ] && awk "BEGIN { exit !($GOOD_S < 3) }"; then
            ok "$who: flight cut at $at, then $after: next s_client done in ${GOOD_S} s"
        else
            not_ok "$who: flight cut at $at, then $after: ${why:-next handshake took $GOOD_S s}"
            echo "# hostile.py: $got"
        fi
    done
}

# errlines: kpsa serve's stderr, one "kpsa: 127.0.0.1:PORT: reason" line
# per failed connection and nothing else but the listening line.
errlines() {
    local n other
    n=$(grep -cE '^kpsa: 127\.0\.0\.1:[0-9]+: [^ ]' "$ERR")
    other=$(grep -vcE '^kpsa: (127\.0\.0\.1:[0-9]+: [^ ]|listening on )' "$ERR")
    if [ "$n" = "$FAILED_CONNS" ] && [ "$other" = 0 ]; then
        ok "$1: one 'kpsa: PEER: reason' line for each of $n failed connections"
    else
        not_ok "$1: $n failure lines for $FAILED_CONNS failed connections, $other other lines"
        sed 's/^/#   /' "$ERR" | tail -5
    fi
}

# ============ kpsa serve, TLS 1.2 ============================================
start_kpsa serve || { echo "Bail out! kpsa serve does not listen"; exit 1; }
W=kpsa-serve
got=$(timeout 30 python3 "$HOSTILE" good --port "$PORT" --identity "$ID" \
    --key "$KEY" --line hand-written --fragment 3)
check "$W: hostile.py's own handshake, 3-byte records, is bound and echoed" \
    bash -c "[[ '$got' == *accepted=1\ echoed=1* ]] &&
        grep -q 'credential-id=12-$ID' '$OUT'"
check "$W: and openssl s_client with the raw key" good

identities "$W" 2.115 2.115

# libssl hands the callback "dev-01@example.com" for the identity with a
# NUL and junk: a client with that KpsaId's key is bound to it, and the
# junk is seen nowhere (OpenSSL 3.0 gives the callback no length).
n0=$(grep -c "credential-id=12-$ID\$" "$OUT")
got=$(timeout 30 python3 "$HOSTILE" cke --port "$PORT" --key "$KEY" \
    --line nul --identity-hex "$(hex "$ID")00$(hex junk)")
n1=$(grep -c "credential-id=12-$ID\$" "$OUT")
if [[ $got == *alert=2.115* ]]; then
    FAILED_CONNS=$((FAILED_CONNS + 1))
    ok "$W: 'dev-01@example.com\\0junk' with its key: unknown_psk_identity"
else
    echo "# hostile.py: $got; bindings to 12-$ID: $n0 -> $n1"
    not_ok "$W: 'dev-01@example.com\\0junk' with the key of $ID is bound to 12-$ID"
fi
check "$W: still serves after it" good

# A hostile SNI is printed escaped (print_safe).
got=$(timeout 30 python3 "$HOSTILE" good --port "$PORT" --identity "$ID" \
    --key "$KEY" --line sni --sni-hex "1b5b33316d0d0a$(hex in-cse)ff7f")
check "$W: SNI with ESC[31m, CR, LF, 0xff, DEL: bound, logged escaped" \
    grep -qF 'sni=\x1b[31m\x0d\x0ain-cse\xff\x7f credential-id' "$OUT"

cuts "$W"

# Served one connection at a time, each read bounded by 10 s: a silent
# peer (a whole ClientHello, then nothing) holds the next one that long.
timeout 30 python3 "$HOSTILE" cut --port "$PORT" --at ch \
    --then silent:20 >"$WORK/silent" &
BG_PID=$!
sleep 0.3
t0=$(date +%s%N)
got=$(timeout 40 python3 "$HOSTILE" good --port "$PORT" --identity "$ID" \
    --key "$KEY" --line after-silent --wait 30)
ms=$((($(date +%s%N) - t0) / 1000000))
wait "$BG_PID"
BG_PID=
FAILED_CONNS=$((FAILED_CONNS + 1))
echo "# silent peer: $(cat "$WORK/silent"); the next client waited $ms ms"
check "$W: a silent peer is dropped after the 10 s idle timeout" \
    bash -c "grep -q 'closed=1 .*held=\(9\|10\|11\)\.' '$WORK/silent'"
check "$W: the client behind it waited that long, then got through (${ms} ms)" \
    bash -c "[[ '$got' == *accepted=1\ echoed=1* ]] && [ $ms -ge 8500 ] &&
        [ $ms -le 12500 ]"

# The handshake must end within 10 s: a peer that sends a byte of its
# ClientHello every 3 s is dropped then, not when it stops.
timeout 40 python3 "$HOSTILE" dribble --port "$PORT" --interval 3 \
    --bytes 6 >"$WORK/dribble" &
BG_PID=$!
sleep 0.3
t0=$(date +%s%N)
got=$(timeout 40 python3 "$HOSTILE" good --port "$PORT" --identity "$ID" \
    --key "$KEY" --line after-dribble --wait 30)
ms=$((($(date +%s%N) - t0) / 1000000))
wait "$BG_PID"
BG_PID=
FAILED_CONNS=$((FAILED_CONNS + 1))
echo "# a byte every 3 s: $(cat "$WORK/dribble"); the next client waited $ms ms"
if [ "$ms" -le 12500 ]; then
    ok "$W: a peer sending a byte every 3 s is dropped within 12.5 s ($ms ms)"
else
    not_ok "$W: a peer sending a byte every 3 s holds the server ${ms} ms, past 10 s"
fi
check "$W: and the client behind it got through" \
    bash -c "[[ '$got' == *accepted=1\ echoed=1* ]]"

# kpsa connect, on the same token, after all that.
echo kpsa-connect | timeout 30 "$KPSA" connect "127.0.0.1:$PORT" \
    --kpsa-id "$ID" --id-b /in-cse --sni in-cse.example.net \
    >"$WORK/conn.out" 2>"$WORK/conn.err"
check "$W: kpsa connect associates after all the hostile peers" \
    grep -qx kpsa-connect "$WORK/conn.out"
errlines "$W"
clean "$W"
stop_pid SERVE_PID
check "$W: SIGTERM stops it cleanly (no crash on the way: status $STOP_RC)" \
    [ "$STOP_RC" = 0 ]

# ============ kpsa serve --tls1.3: pre_shared_key identities =================
start_kpsa serve13 --tls1.3 ||
    { echo "Bail out! kpsa serve --tls1.3 does not listen"; exit 1; }
W=kpsa-serve-tls1.3
FAILED_CONNS=0
# tls13 DESC WANT ARGS...: WANT an alert LEVEL.DESC, or "selected" when
# the ServerHello must take the PSK (the binder computed from KEY).
tls13() {
    local desc=$1 want=$2 got why=
    shift 2
    got=$(timeout 60 python3 "$HOSTILE" tls13 --port "$PORT" "$@")
    FAILED_CONNS=$((FAILED_CONNS + 1))
    if [ "$want" = selected ]; then
        [[ $got == *psk_selected=1* ]] || why="the PSK was not selected"
    else
        [[ $got == *alert=$want\ closed=1* ]] ||
            why="wanted alert $want and a close"
    fi
    good -tls1_3 || why="$why; $GOOD_WHY"
    if [ -z "$why" ]; then
        ok "$W: $desc: $(sed 's/stage=[a-z0-9]* //; s/ accepted=0//' <<<"$got"); next handshake good"
    else
        not_ok "$W: $desc: ${why#; }"
        echo "# hostile.py: $got"
    fi
}
tls13 "the known KpsaId and its binder (control)" selected \
    --identity "$ID" --key "$KEY"
tls13 "the known KpsaId, random binder" 2.47 --identity "$ID"
# Not found: no PSK, and without a certificate the full handshake fails.
tls13 "unknown KpsaId" 2.40 --identity nobody@example.com --key "$KEY"
tls13 "empty identity" 2.50 --identity-hex ""
tls13 "'\\0'" 2.40 --identity-hex 00 --key "$KEY"
tls13 "ESC[31m, CR, LF, 0xff in the identity" 2.40 --key "$KEY" \
    --identity-hex "1b5b33316d$(hex dev-01)0d0a$(hex @example.com)1b5b306dff"
tls13 "identity of 200 bytes" 2.40 --identity a@example.com --repeat 200 \
    --key "$KEY"
tls13 "identity of 257 bytes" 2.40 --identity a@example.com --repeat 257
tls13 "identity of 60000 bytes, 4 records" 2.40 --identity a@example.com \
    --repeat 60000
tls13 "'dev-01@example.com\\0junk', random binder" 2.40 \
    --identity-hex "$(hex "$ID")00$(hex junk)"
# server_session sees the identity as sent and finds nothing; libssl then
# asks server_psk, the TLS 1.2 callback, with the identity cut at NUL.
got=$(timeout 60 python3 "$HOSTILE" tls13 --port "$PORT" --key "$KEY" \
    --identity-hex "$(hex "$ID")00$(hex junk)")
FAILED_CONNS=$((FAILED_CONNS + 1))
if [[ $got == *psk_selected=1* ]]; then
    echo "# hostile.py: $got"
    not_ok "$W: 'dev-01@example.com\\0junk' with the binder of $ID's key is taken"
else
    ok "$W: 'dev-01@example.com\\0junk' with the binder of $ID's key: refused ($got)"
fi
check "$W: still serves after it" good -tls1_3
errlines "$W"
clean "$W"
stop_pid SERVE_PID
check "$W: SIGTERM stops it cleanly (status $STOP_RC)" [ "$STOP_RC" = 0 ]

# ============ openssl s_server with the kpsa provider ========================
W=s_server
if provider_instrumented; then
    skip "$W: openssl cannot load a provider built with sanitizers"
else
    start_s_server || { echo "Bail out! s_server does not listen"; exit 1; }
    got=$(timeout 30 python3 "$HOSTILE" good --port "$PORT" \
        --identity "$ID" --key "$KEY" --line hand-written)
    check "$W: hostile.py's own handshake is accepted" \
        bash -c "[[ '$got' == *accepted=1* ]] &&
            grep -qx hand-written '$OUT'"
    # s_server takes any identity with its one key (it only warns, and
    # not with -quiet): our random key fails at Finished instead.
    identities "$W" 2.20 2.50
    cuts "$W"
    clean "$W"
    stop_pid HOLD_PID
    stop_pid SRV_PID
    check "$W: still running at the end (status $STOP_RC from SIGTERM)" \
        [ "$STOP_RC" = 143 ]
fi

finish
