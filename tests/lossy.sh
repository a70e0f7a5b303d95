#!/usr/bin/env bash
# DTLS associations survive a lossy path: kpsa connect --dtls reaches
# kpsa serve --dtls through a UDP proxy (lossy.py) that drops chosen
# datagrams of the handshake: the first ClientHello, the
# HelloVerifyRequest, the ClientHello carrying the cookie together with the
# server's flight that answers it, the client's ClientKeyExchange/Finished
# flight. OpenSSL's retransmission timers (1 s, doubling) recover each
# loss; the proxy's log shows the loss happened. Which datagram holds
# which flight is read from a run without loss first.
here=$(dirname "$0")
# shellcheck source=tests/lib.sh
. "$here/lib.sh"
KPSA=${KPSA:-build/tools/kpsa}
KPSA_PROVIDER=$(realpath "${KPSA_PROVIDER:-build/provider/kpsa.so}")
export KPSA_PROVIDER
LOSSY="$here/lossy.py"
ID=dev-01@example.com
IDB=/in-cse
SNI=in-cse.example.com
SRV_PID=
PROXY_PID=

# stop PID: ends a process of ours and reaps it.
stop() {
    [ -n "$1" ] || return 0
    kill "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}

stop_all() {
    stop "$PROXY_PID"
    PROXY_PID=
    stop "$SRV_PID"
    SRV_PID=
}

setup_token
trap 'stop_all; cleanup' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
umask 077
openssl rand -hex 32 >"$WORK/key"
"$KPSA" import "$ID" --in "$WORK/key" >/dev/null ||
    { echo "Bail out! import"; exit 1; }

# show FILE...: the files as TAP comments, for a failed check.
show() {
    local f
    for f; do
        echo "# --- ${f#"$WORK"/}:"
        sed 's/^/#   /' "$f" 2>/dev/null
    done
}

SRV_PORT=$(free_port)
"$KPSA" serve --listen "127.0.0.1:$SRV_PORT" --dtls \
    >"$WORK/srv.out" 2>"$WORK/srv.err" &
SRV_PID=$!
for _ in $(seq 100); do
    grep -q '^kpsa: listening on ' "$WORK/srv.err" && break
    kill -0 "$SRV_PID" 2>/dev/null || break
    sleep 0.1
done
grep -q '^kpsa: listening on ' "$WORK/srv.err" ||
    { show "$WORK/srv.err"; echo "Bail out! kpsa serve did not start"; exit 1; }

# proxy ARGS...: a fresh lossy.py in front of the server, on a free port
# ($PROXY_PORT), logging to $WORK/proxy.log; ARGS are its --drop options.
proxy() {
    stop "$PROXY_PID"
    PROXY_PID=
    PROXY_PORT=$(free_port)
    : >"$WORK/proxy.log"
    : >"$WORK/proxy.out"
    python3 "$LOSSY" "$PROXY_PORT" "$SRV_PORT" --log "$WORK/proxy.log" \
        --parent $$ "$@" \
        >"$WORK/proxy.out" 2>"$WORK/proxy.err" &
    PROXY_PID=$!
    for _ in $(seq 100); do
        grep -qx ready "$WORK/proxy.out" && return 0
        kill -0 "$PROXY_PID" 2>/dev/null || break
        sleep 0.1
    done
    show "$WORK/proxy.err"
    echo "Bail out! lossy.py did not start"
    exit 1
}

# associate NAME: kpsa connect --dtls through the proxy, sending one line
# of its own; the connection's output in $WORK/conn.out and conn.err,
# its status in RC, the server's stdout line count before it in SRV_LINES.
associate() {
    LINE="echo-$1-$$-$RANDOM"
    SRV_LINES=$(wc -l <"$WORK/srv.out")
    echo "$LINE" | timeout 60 "$KPSA" connect "127.0.0.1:$PROXY_PORT" \
        --kpsa-id "$ID" --id-b "$IDB" --sni "$SNI" --dtls \
        >"$WORK/conn.out" 2>"$WORK/conn.err"
    RC=$?
}

# survived: the association completed, it was bound to IdB, the echo of
# the line came back, and the server printed a line for it.
survived() {
    [ "$RC" -eq 0 ] &&
        grep -q "^peer=127.0.0.1:$PROXY_PORT protocol=DTLSv1.2 .* kpsa-id=$ID id-b=$IDB\$" \
            "$WORK/conn.out" &&
        grep -qx -- "$LINE" "$WORK/conn.out" &&
        server_line | grep -q "protocol=DTLSv1.2 .*credential-id=12-$ID"
}

# server_line: what the server printed for the last association.
server_line() {
    # The line is printed before the echo, so it is there by now.
    tail -n "+$((SRV_LINES + 1))" "$WORK/srv.out" | grep '^peer='
}

# logged DIR STATE TYPE [INDEX]: the proxy log has a datagram going DIR
# (up/down), STATE (passed/dropped), with a record TYPE (a word of the
# log such as handshake=ClientHello:cookie=0), at INDEX when given.
logged() {
    local idx=${4:-[0-9]*}
    grep -q "^$1 $idx len=[0-9]* $2 \(.* \)\?$3\( \|\$\)" "$WORK/proxy.log"
}

# passed_after DIR TYPE INDEX: a datagram going DIR after the INDEX'th,
# holding a record TYPE, passed: a retransmission of the one dropped.
passed_after() {
    awk -v dir="$1" -v type="$2" -v idx="$3" '
        $1 == dir && $2 + 0 > idx + 0 && $4 == "passed" {
            for (i = 5; i <= NF; i++) if ($i == type) { found = 1; exit }
        }
        END { exit !found }
    ' "$WORK/proxy.log"
}

# first_index DIR TYPE: the index of the first datagram going DIR holding
# a record TYPE in the proxy log.
first_index() {
    awk -v dir="$1" -v type="$2" '
        $1 == dir { for (i = 5; i <= NF; i++) if ($i == type) { print $2; exit } }
    ' "$WORK/proxy.log"
}

# bound_local PORT...: every UDP socket on these ports is on 127.0.0.1.
bound_local() {
    local port filter='' addrs
    for port; do filter="${filter:+$filter or }sport = :$port"; done
    addrs=$(ss -Huan "( $filter )" | awk '{ print $4 }')
    [ -n "$addrs" ] && ! grep -qv '^127\.0\.0\.1:' <<<"$addrs"
}

# bound_to_id: the server's line names the SNI and credential-id=12-KpsaId.
bound_to_id() {
    server_line | grep -q " sni=$SNI credential-id=12-$ID\( \|\$\)"
}

# report DESC: fails DESC with what is needed to see why.
report() {
    not_ok "$1"
    echo "# connect status $RC"
    show "$WORK/conn.out" "$WORK/conn.err" "$WORK/proxy.log" "$WORK/srv.err"
}

CH1=handshake=ClientHello:cookie=0
HVR=handshake=HelloVerifyRequest
SH=handshake=ServerHello
CKE=handshake=ClientKeyExchange

# (a) No loss: the flights as they go, and the cookie exchange.
proxy
associate plain
if survived; then ok "no loss: the association completes and echoes"; else
    report "no loss: the association completes and echoes"; fi
check "no loss: the server sent a HelloVerifyRequest (cookie exchange)" \
    logged down passed "$HVR"
# The ClientHello with the cookie, as the no-loss run shows it.
CH2=$(grep -o '^up [0-9]* len=[0-9]* passed .*handshake=ClientHello:cookie=[1-9][0-9]*' \
    "$WORK/proxy.log" | head -n 1 | grep -o 'handshake=ClientHello:cookie=[0-9]*$')
check "no loss: the client answered it with a ClientHello with a cookie" \
    [ -n "$CH2" ]
check "the server and the proxy listen on 127.0.0.1 only" \
    bound_local "$SRV_PORT" "$PROXY_PORT"
check "no loss: the server bound it to credential-id=12-$ID" \
    bound_to_id
I_CH1=$(first_index up "$CH1")
I_HVR=$(first_index down "$HVR")
I_CH2=$(first_index up "$CH2")
I_SH=$(first_index down "$SH")
I_CKE=$(first_index up "$CKE")
if [ -n "$I_CH1" ] && [ -n "$I_HVR" ] && [ -n "$I_CH2" ] && [ -n "$I_SH" ] &&
    [ -n "$I_CKE" ]; then
    ok "no loss: ClientHello up $I_CH1, HelloVerifyRequest down $I_HVR," \
        "ClientHello+cookie up $I_CH2, ServerHello down $I_SH," \
        "ClientKeyExchange up $I_CKE"
else
    not_ok "no loss: every flight of the handshake is in the proxy log"
    show "$WORK/proxy.log"
    echo "Bail out! cannot tell which datagram holds which flight"
    exit 1
fi

# lossy NAME DESC PROXY-ARGS -- DIR TYPE INDEX [DIR TYPE INDEX]...: one
# association through a proxy dropping PROXY-ARGS; each DIR TYPE INDEX is
# a datagram that must have been dropped, and retransmitted later.
lossy() {
    local name=$1 desc=$2 dir type idx
    shift 2
    local args=()
    while [ "$1" != -- ]; do args+=("$1"); shift; done
    shift
    proxy "${args[@]}"
    associate "$name"
    if survived; then ok "$desc: the association completes and echoes"; else
        report "$desc: the association completes and echoes"; fi
    while [ $# -ge 3 ]; do
        dir=$1 type=$2 idx=$3
        shift 3
        check "$desc: $dir $idx ($type) was dropped" \
            logged "$dir" dropped "$type" "$idx"
        check "$desc: $dir $type was sent again after it and passed" \
            passed_after "$dir" "$type" "$idx"
    done
}

# (b) The client's first ClientHello.
lossy first-hello "first ClientHello lost" --drop-up "$I_CH1" -- \
    up "$CH1" "$I_CH1"

# (c) The server's HelloVerifyRequest.
lossy hvr "HelloVerifyRequest lost" --drop-down "$I_HVR" -- \
    down "$HVR" "$I_HVR"

# (d) The ClientHello carrying the cookie, and then the server's flight
# answering its retransmission. Until then the server sent only the
# HelloVerifyRequest: that flight is still the I_SH'th datagram down.
lossy cookie-hello "ClientHello with cookie and ServerHello lost" \
    --drop-up "$I_CH2" --drop-down "$I_SH" -- \
    up "$CH2" "$I_CH2" down "$SH" "$I_SH"

# (e) The client's ClientKeyExchange/ChangeCipherSpec/Finished flight.
lossy finished "ClientKeyExchange/Finished flight lost" \
    --drop-up "$I_CKE" -- up "$CKE" "$I_CKE"
check "ClientKeyExchange/Finished flight lost: it held the encrypted Finished" \
    grep -q "^up $I_CKE len=[0-9]* dropped .*handshake=encrypted" \
    "$WORK/proxy.log"

stop "$PROXY_PID"
PROXY_PID=

# (f) SIGTERM stops the server promptly, with status 0.
kill -TERM "$SRV_PID"
for _ in $(seq 30); do
    kill -0 "$SRV_PID" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$SRV_PID" 2>/dev/null; then
    not_ok "SIGTERM: the server exits within 3 s"
    stop "$SRV_PID"
else
    wait "$SRV_PID"
    rc=$?
    if [ "$rc" -eq 0 ]; then ok "SIGTERM: the server exits 0 within 3 s"; else
        not_ok "SIGTERM: the server exits 0 within 3 s"
        echo "# status $rc"
        show "$WORK/srv.err"
    fi
fi
SRV_PID=

finish
