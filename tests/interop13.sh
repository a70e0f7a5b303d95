#!/usr/bin/env bash
# Interoperability of the kpsa provider in TLS 1.3 with an external PSK:
# kpsa on one side, holding only the key's handle, and an independent peer
# holding the raw key on the other (OpenSSL's default provider, GnuTLS),
# in the psk_dhe_ke mode (ECDHE, and FFDHE) and the psk_ke mode. A
# handshake passes when a line from the client reaches the server, a line
# from the server reaches the client, both sides report TLS 1.3 with the
# PSK, the key exchange is the one asked for, and kpsa's side made exactly
# the token HMACs the key schedule predicts (KPSA_DEBUG=1 logs each call):
# psk_dhe_ke 2 (binder, handshake secret), psk_ke 7 (binder, both
# handshake and application traffic secrets, exporter and resumption
# master secrets). Then the refusals (wrong key, handle of no key, 0-RTT
# early data) and ordinary TLS 1.3 with kpsa loaded but no handle.
# With P11KIT=1 the token is served by p11-kit server.
#
# Servers listen on 127.0.0.1, except gnutls-serv, which has no option to
# choose its address and listens on every interface for its few seconds.
here=$(dirname "$0")
# shellcheck source=tests/lib.sh
. "$here/lib.sh"
KPSA=${KPSA:-build/tools/kpsa}
# openssl.cnf resolves a relative module path against its modules directory.
KPSA_PROVIDER=$(realpath "${KPSA_PROVIDER:-build/provider/kpsa.so}")
export KPSA_PROVIDER
if provider_instrumented; then
    echo "1..0 # SKIP openssl cannot load a provider built with sanitizers"
    exit 0
fi

PEER_PID=
CLIENT_PID=
PORT=
N=0

interop_setup 0
# --- servers and clients: each function execs its program on $PORT ------

# s_server CONF ARG...: prints what the client sends, sends its standard
# input to the client, for one connection unless ARG holds another
# -naccept; s_client CONF ARG... likewise. The kpsa side logs
# its token calls on standard error.
s_server() {
    local conf=$1 debug=0
    shift
    [ "$conf" = "$KPSA_CNF" ] && debug=1
    exec env OPENSSL_CONF="$conf" KPSA_DEBUG=$debug timeout 30 \
        openssl s_server -accept "127.0.0.1:$PORT" -naccept 1 "$@"
}

s_client() {
    local conf=$1 debug=0
    shift
    [ "$conf" = "$KPSA_CNF" ] && debug=1
    exec env OPENSSL_CONF="$conf" KPSA_DEBUG=$debug timeout 20 \
        openssl s_client -nocommands -connect "127.0.0.1:$PORT" "$@"
}

# mode_args MODE SIDE: the openssl options of a key exchange mode, in
# MARGS. dhe: psk_dhe_ke over ECDHE (the default groups); ffdhe: psk_dhe_ke
# over ffdhe2048; ke: psk_ke, which OpenSSL 3.0 picks only when both sides
# allow it and they share no group.
mode_args() {
    MARGS=()
    case $1:$2 in
    ke:server) MARGS=(-allow_no_dhe_kex -groups X448) ;;
    ke:client) MARGS=(-allow_no_dhe_kex -groups P-256) ;;
    ffdhe:*) MARGS=(-groups ffdhe2048) ;;
    esac
}

mname() {
    case $1 in
    dhe) echo "psk_dhe_ke (ECDHE)" ;;
    ffdhe) echo "psk_dhe_ke (ffdhe2048)" ;;
    ke) echo "psk_ke" ;;
    esac
}

# The token HMACs of one handshake on kpsa's side.
signs() {
    [ "$1" = ke ] && echo 7 || echo 2
}

# openssl_server CONF MODE PSK [ARG...]; openssl_client CONF MODE PSK
# [ARG...]. s_server and s_client give the PSK SHA-256.
openssl_server() {
    local conf=$1 psk=$3
    mode_args "$2" server
    shift 3
    s_server "$conf" -tls1_3 -nocert -psk "$psk" -psk_identity "$ID" \
        "${MARGS[@]}" "$@"
}

openssl_client() {
    local conf=$1 psk=$3
    mode_args "$2" client
    shift 3
    s_client "$conf" -tls1_3 -psk "$psk" -psk_identity "$ID" "${MARGS[@]}" "$@"
}

# gnutls_priority MODE: TLS 1.3 only, with the one key exchange of MODE.
gnutls_priority() {
    local p=NORMAL:-VERS-ALL:+VERS-TLS1.3:-KX-ALL
    case $1 in
    dhe) echo "$p:+ECDHE-PSK" ;;
    ffdhe) echo "$p:+DHE-PSK:-GROUP-ALL:+GROUP-FFDHE2048" ;;
    ke) echo "$p:+PSK" ;;
    esac
}

# gnutls_server MODE PSKPASSWD: echoes what the client sends.
gnutls_server() {
    exec timeout 30 gnutls-serv --port "$PORT" --echo --pskpasswd "$2" \
        --priority "$(gnutls_priority "$1")"
}

# gnutls_client MODE KEY: -V prints the version and key exchange.
gnutls_client() {
    exec timeout 20 gnutls-cli -V --port "$PORT" --pskusername "$ID" \
        --pskkey "$2" --priority "$(gnutls_priority "$1")" 127.0.0.1
}

# serve FUNCTION ARG...: starts a server on a free port of 127.0.0.1, its
# standard input on our fd 8, its output in $WORK/srv.out and srv.err;
# waits until it listens (at most 5 s), trying three ports.
serve() {
    GOT_MSG=0
    GOT_REPLY=0
    RC_CLIENT=
    RC_SERVER=
    for _ in 1 2 3; do
        PORT=$(free_port)
        rm -f "$WORK/srv.in"
        mkfifo "$WORK/srv.in"
        "$@" <"$WORK/srv.in" >"$WORK/srv.out" 2>"$WORK/srv.err" &
        PEER_PID=$!
        exec 8>"$WORK/srv.in"
        for _ in $(seq 100); do
            ss -H -ltn "sport = :$PORT" | grep -q . && return 0
            kill -0 "$PEER_PID" 2>/dev/null || break
            sleep 0.05
        done
        stop_by_fd PEER_PID 8 0
    done
    return 1
}

# await FILE... TEXT TICKS: waits until one FILE holds TEXT, at most
# TICKS * 50 ms and while the client runs.
await() {
    local ticks=${*: -1} text=${*: -2:1} files=("${@:1:$#-2}")
    for _ in $(seq "$ticks"); do
        grep -qF -- "$text" "${files[@]}" && return 0
        kill -0 "$CLIENT_PID" 2>/dev/null || break
        sleep 0.05
    done
    grep -qF -- "$text" "${files[@]}"
}

# converse SERVER-KIND FUNCTION ARG...: runs a client (output in
# $WORK/cli.out, cli.err) that sends $MSG; an openssl server (KIND openssl)
# must print it, then sends $REPLY; gnutls-serv must log it and echo it
# (then $REPLY is $MSG). GOT_MSG and GOT_REPLY say what arrived. The
# client is stopped, then the server unless KEEP=1; their status in
# RC_CLIENT and RC_SERVER.
converse() {
    local kind=$1
    shift
    N=$((N + 1))
    MSG="hello-from-client-$N-$$"
    REPLY="hello-from-server-$N-$$"
    [ "$kind" = gnutls ] && REPLY=$MSG
    GOT_MSG=0
    GOT_REPLY=0
    rm -f "$WORK/cli.in"
    mkfifo "$WORK/cli.in"
    "$@" <"$WORK/cli.in" >"$WORK/cli.out" 2>"$WORK/cli.err" &
    CLIENT_PID=$!
    exec 9>"$WORK/cli.in"
    (printf '%s\n' "$MSG" >&9) 2>/dev/null
    if await "$WORK/srv.out" "$WORK/srv.err" "$MSG" 200; then
        GOT_MSG=1
        [ "$kind" = openssl ] && (printf '%s\n' "$REPLY" >&8) 2>/dev/null
        await "$WORK/cli.out" "$REPLY" 100 && GOT_REPLY=1
    fi
    stop_by_fd CLIENT_PID 9
    RC_CLIENT=$RC_STOP
    RC_SERVER=
    [ "${KEEP:-0}" = 1 ] && return
    # gnutls-serv does not end on its own.
    if [ "$kind" = gnutls ]; then stop_by_fd PEER_PID 8 0; else stop_by_fd PEER_PID 8; fi
    RC_SERVER=$RC_STOP
}

# show [LINES]: the ends of both sides' output, as TAP comments, without
# the token call log, hex dumps and PEM.
show() {
    local f
    echo "# client status $RC_CLIENT, server status $RC_SERVER"
    for f in srv.out srv.err cli.out cli.err; do
        echo "# --- $f"
        grep -v -E '^ +[0-9a-f]{4} - |^-----|^[A-Za-z0-9+/=]{64}$|^kpsa: debug: .* -> CKR_OK$' \
            "$WORK/$f" | tail -n "${1:-8}" | sed 's/^/#   /'
    done
}

# calls NAME FILE: how many successful calls of NAME FILE logs.
calls() {
    grep -cx "kpsa: debug: $1 -> CKR_OK" "$2"
}

# token_calls FILE: how many token calls FILE logs, successful or not.
token_calls() {
    grep -c '^kpsa: debug: C_[A-Za-z]* -> ' "$1"
}

# Who wrote what: the openssl client's output, the openssl server's, and
# GnuTLS's (client or server), for SIDE (kpsa's role) and PEER.
outputs() {
    OSSL_CLI='' OSSL_SRV='' GNUTLS='' KERR=$WORK/cli.err
    [ "$1" = server ] && KERR=$WORK/srv.err
    case $1:$2 in
    server:openssl) OSSL_CLI=$WORK/cli.out OSSL_SRV=$WORK/srv.out ;;
    server:gnutls) OSSL_SRV=$WORK/srv.out GNUTLS=$WORK/cli.out ;;
    client:openssl) OSSL_CLI=$WORK/cli.out OSSL_SRV=$WORK/srv.out ;;
    client:gnutls) OSSL_CLI=$WORK/cli.out GNUTLS=$WORK/srv.out ;;
    esac
}

# negotiated MODE: every report of the conversation that just ended
# (outputs sets which) says TLS 1.3 with the PSK, and the key exchange of
# MODE: OpenSSL's client names the server's (EC)DHE share, GnuTLS its
# ECDHE parameters (it prints nothing for FFDHE). WHY says what is wrong.
negotiated() {
    WHY=
    if [ -n "$OSSL_CLI" ]; then
        grep -q '^Reused, TLSv1\.3, Cipher is TLS_' "$OSSL_CLI" ||
            WHY="$WHY; s_client reports no TLS 1.3 PSK session"
        case $1 in
        dhe) grep '^Server Temp Key: ' "$OSSL_CLI" | grep -qv ': DH,' ;;
        ffdhe) grep -qx 'Server Temp Key: DH, 2048 bits' "$OSSL_CLI" ;;
        ke) ! grep -q '^Server Temp Key: ' "$OSSL_CLI" ;;
        esac || WHY="$WHY; s_client's Server Temp Key is not that of $1"
    fi
    if [ -n "$OSSL_SRV" ]; then
        grep -q '^CIPHER is TLS_' "$OSSL_SRV" ||
            WHY="$WHY; s_server reports no TLS 1.3 suite"
    fi
    if [ -n "$GNUTLS" ]; then
        grep -qx -- '- Version: TLS1.3' "$GNUTLS" &&
            grep -qx -- "- PSK authentication. Connected as '$ID'" \
                "$GNUTLS" || WHY="$WHY; GnuTLS reports no TLS 1.3 PSK session"
        case $1 in
        dhe) grep -qx -- '- Ephemeral EC Diffie-Hellman parameters' "$GNUTLS" ;;
        *) ! grep -q -- '^- Ephemeral' "$GNUTLS" ;;
        esac || WHY="$WHY; GnuTLS's ephemeral parameters are not those of $1"
    fi
    [ -z "$WHY" ]
}

# judge DESC MODE SIDE PEER [KERR]: two TAP lines for the conversation
# that just ended: the conversation, and kpsa's token calls (in KERR).
judge() {
    local desc=$1 mode=$2 want have
    outputs "$3" "$4"
    KERR=${5:-$KERR}
    negotiated "$mode"
    if [ "$GOT_MSG$GOT_REPLY" = 11 ] && [ -z "$WHY" ]; then
        ok "$desc"
    else
        not_ok "$desc"
        echo "# client line arrived: $GOT_MSG; server line arrived: $GOT_REPLY${WHY}"
        show
    fi
    want=$(signs "$mode")
    have=$(calls C_Sign "$KERR")
    if [ "$have" = "$want" ] && [ "$(calls C_SignInit "$KERR")" = "$want" ]; then
        ok "$desc: $want C_Sign on kpsa's side"
    else
        not_ok "$desc: $want C_Sign on kpsa's side"
        echo "# C_Sign: $have, C_SignInit: $(calls C_SignInit "$KERR")"
        grep -v -e '-> CKR_OK$' "$KERR" | grep -e '^kpsa' -e ':error:' |
            tail -n 6 | sed 's/^/#   /'
    fi
}

pretty() {
    [ "$1" = gnutls ] && echo GnuTLS || echo OpenSSL
}

# cell SIDE PEER MODE: one handshake of the matrix. SIDE is kpsa's role
# (server, client); PEER (openssl, gnutls) holds the raw key.
cell() {
    local side=$1 peer=$2 mode=$3 desc
    if [ "$side" = server ]; then
        desc="$(pretty "$peer") client -> kpsa server, TLS 1.3, $(mname "$mode")"
        if serve openssl_server "$KPSA_CNF" "$mode" "$HANDLE"; then
            if [ "$peer" = openssl ]; then
                converse openssl openssl_client "$PLAIN_CNF" "$mode" "$KEY"
            else
                converse openssl gnutls_client "$mode" "$KEY"
            fi
            judge "$desc" "$mode" server "$peer"
            return
        fi
    else
        desc="kpsa client -> $(pretty "$peer") server, TLS 1.3, $(mname "$mode")"
        if if [ "$peer" = openssl ]; then
            serve openssl_server "$PLAIN_CNF" "$mode" "$KEY"
        else
            serve gnutls_server "$mode" "$WORK/pskpasswd"
        fi; then
            converse "$peer" openssl_client "$KPSA_CNF" "$mode" "$HANDLE"
            judge "$desc" "$mode" client "$peer"
            return
        fi
    fi
    not_ok "$desc"
    echo "# the server did not listen"
    sed 's/^/#   /' "$WORK/srv.err"
    not_ok "$desc: $(signs "$mode") C_Sign on kpsa's side"
}

# --- the matrix ------------------------------------------------------------
for mode in dhe ke ffdhe; do
    for side in server client; do
        for peer in openssl gnutls; do
            cell "$side" "$peer" "$mode"
        done
    done
done

# --- two handshakes on one kpsa server: the second finds its key family in
# the index, without searching the token or logging in again.
D="OpenSSL client -> kpsa server (-naccept 2), TLS 1.3, psk_ke"
if serve openssl_server "$KPSA_CNF" ke "$HANDLE" -naccept 2; then
    KEEP=1 converse openssl openssl_client "$PLAIN_CNF" ke "$KEY"
    cp "$WORK/srv.err" "$WORK/debug1"
    judge "$D, handshake 1" ke server openssl "$WORK/debug1"
    converse openssl openssl_client "$PLAIN_CNF" ke "$KEY"
    tail -n +"$(($(wc -l <"$WORK/debug1") + 1))" "$WORK/srv.err" \
        >"$WORK/debug2"
    judge "$D, handshake 2" ke server openssl "$WORK/debug2"
else
    not_ok "$D: the server did not listen"
    : >"$WORK/debug1"
    : >"$WORK/debug2"
fi
check "$D, handshake 1: builds the index (C_FindObjectsInit)" \
    [ "$(calls C_FindObjectsInit "$WORK/debug1")" -ge 1 ]
c2="$(calls C_FindObjectsInit "$WORK/debug2"):$(calls C_Login "$WORK/debug2")"
check "$D, handshake 2: no C_FindObjectsInit, no C_Login" [ "$c2" = 0:0 ]
[ "$c2" = 0:0 ] || echo "# C_FindObjectsInit:C_Login in handshake 2: $c2"

# --- handshakes that must fail ----------------------------------------------
# refused DESC SIDE PEER MODE KPSA-PSK PEER-KEY [TEXT]: nothing may arrive,
# no side may report an established connection, and TEXT, when given, must
# be on kpsa's standard error.
refused() {
    local desc=$1 side=$2 peer=$3 mode=$4 kpsk=$5 pkey=$6 text=${7:-}
    local pfile=$WORK/pskpasswd started=0
    [ "$pkey" = "$WRONG" ] && pfile=$WORK/pskpasswd-wrong
    if [ "$side" = server ]; then
        serve openssl_server "$KPSA_CNF" "$mode" "$kpsk" && started=1 &&
            if [ "$peer" = openssl ]; then
                converse openssl openssl_client "$PLAIN_CNF" "$mode" "$pkey"
            else
                converse openssl gnutls_client "$mode" "$pkey"
            fi
    else
        if [ "$peer" = openssl ]; then
            serve openssl_server "$PLAIN_CNF" "$mode" "$pkey"
        else
            serve gnutls_server "$mode" "$pfile"
        fi && started=1 &&
            converse "$peer" openssl_client "$KPSA_CNF" "$mode" "$kpsk"
    fi
    judge_refused "$desc" "$side" "$text" "$started"
}

# judge_refused DESC SIDE TEXT STARTED
judge_refused() {
    local kerr=$WORK/cli.err
    [ "$2" = server ] && kerr=$WORK/srv.err
    if [ "$4" = 1 ] && [ "$GOT_MSG$GOT_REPLY" = 00 ] &&
        ! grep -q -e '^CIPHER is' -e '^- Version:' -e '^- Handshake was completed' \
            -e 'TLSv1\.3, Cipher is' -e '^Early data was accepted' \
            "$WORK/srv.out" "$WORK/cli.out" &&
        { [ -z "$3" ] || grep -qF -- "$3" "$kerr"; }; then
        ok "$1"
    else
        not_ok "$1"
        [ "$4" = 1 ] || echo "# the server did not listen"
        [ -n "$3" ] && echo "# wanted on kpsa's stderr: $3"
        show 12
    fi
}

B="binder does not verify"
for mode in dhe ke; do
    for peer in openssl gnutls; do
        P=$(pretty "$peer")
        refused "wrong key: $P client -> kpsa server, TLS 1.3, $(mname $mode)" \
            server "$peer" "$mode" "$HANDLE" "$WRONG" "$B"
        refused "wrong key: kpsa client -> $P server, TLS 1.3, $(mname $mode)" \
            client "$peer" "$mode" "$HANDLE" "$WRONG"
    done
done

R="names no key"
for peer in openssl gnutls; do
    P=$(pretty "$peer")
    refused "handle of no key: $P client -> kpsa server, TLS 1.3, $(mname dhe)" \
        server "$peer" dhe "$NOKEY" "$KEY" "$R"
    refused "handle of no key: kpsa client -> $P server, TLS 1.3, $(mname dhe)" \
        client "$peer" dhe "$NOKEY" "$KEY" "$R"
done

# --- 0-RTT early data --------------------------------------------------------
# s_client offers early data with an external PSK only from -psk_session, a
# session whose max_early_data is not 0; the s_server that accepts it needs
# the same session (-psk gives one with max_early_data 0, whose early data
# the record layer then rejects as too much) and a suite of the PSK's hash.
# psk_session KEY-HEX FILE: such a session, TLS_AES_128_GCM_SHA256.
psk_session() {
    timeout 30 python3 - "$1" >"$2" <<'PY'
import base64, sys, time

def tlv(tag, body):
    n = len(body)
    if n < 128:
        head = bytes([n])
    else:
        b = n.to_bytes((n.bit_length() + 7) // 8, "big")
        head = bytes([0x80 | len(b)]) + b
    return bytes([tag]) + head + body

def integer(v):
    return tlv(0x02, v.to_bytes(v.bit_length() // 8 + 1, "big"))

# SSL_SESSION_ASN1 (ssl/ssl_asn1.c): version, TLS 1.3, the suite, no
# session id, the PSK as master key; [1] time, [2] timeout,
# [15] max_early_data.
der = tlv(0x30, integer(1) + integer(0x0304) + tlv(0x04, b"\x13\x01")
          + tlv(0x04, b"") + tlv(0x04, bytes.fromhex(sys.argv[1]))
          + tlv(0xa1, integer(int(time.time()))) + tlv(0xa2, integer(86400))
          + tlv(0xaf, integer(16384)))
b64 = base64.b64encode(der).decode()
print("-----BEGIN SSL SESSION PARAMETERS-----")
for i in range(0, len(b64), 64):
    print(b64[i:i + 64])
print("-----END SSL SESSION PARAMETERS-----")
PY
}
psk_session "$KEY" "$WORK/raw.sess"
psk_session "$HANDLE" "$WORK/handle.sess"
EARLY="early-data-$$"
printf '%s\n' "$EARLY" >"$WORK/early"

# early_server CONF SESSION: accepts 0-RTT with SESSION.
early_server() {
    s_server "$1" -tls1_3 -nocert -psk_session "$2" -psk_identity "$ID" \
        -ciphersuites TLS_AES_128_GCM_SHA256 -early_data
}

# early_client CONF SESSION: sends $WORK/early as 0-RTT data.
early_client() {
    s_client "$1" -tls1_3 -psk_session "$2" -psk_identity "$ID" \
        -early_data "$WORK/early"
}

# The sessions work: the default provider on both sides accepts the 0-RTT
# data (so the refusals below are kpsa's).
D="0-RTT, no kpsa: OpenSSL client -> OpenSSL server, TLS 1.3, early data accepted"
if serve early_server "$PLAIN_CNF" "$WORK/raw.sess"; then
    converse openssl early_client "$PLAIN_CNF" "$WORK/raw.sess"
fi
if [ "$GOT_MSG$GOT_REPLY" = 11 ] &&
    grep -qx 'Early data was accepted' "$WORK/cli.out" &&
    grep -qx -- "$EARLY" "$WORK/srv.out"; then
    ok "$D"
else
    not_ok "$D"
    show
fi

# kpsa s_server with -early_data: a client that does not offer 0-RTT gets
# an ordinary handshake.
D="kpsa server with -early_data, OpenSSL client sends no early data, TLS 1.3, $(mname dhe)"
if serve openssl_server "$KPSA_CNF" dhe "$HANDLE" -early_data; then
    converse openssl openssl_client "$PLAIN_CNF" dhe "$KEY"
    judge "$D" dhe server openssl
    check "$D: early data was not sent" \
        grep -qx 'Early data was not sent' "$WORK/cli.out"
else
    not_ok "$D: the server did not listen"
fi

# A client that offers 0-RTT: OpenSSL accepts early data for an external
# PSK, and kpsa refuses the early traffic secret: the handshake fails,
# nothing arrives.
R="0-RTT early data is not supported"
D="0-RTT refused: OpenSSL client (raw-key session) -> kpsa server (-psk, -early_data), TLS 1.3"
started=0
serve openssl_server "$KPSA_CNF" dhe "$HANDLE" -early_data && started=1 &&
    converse openssl early_client "$PLAIN_CNF" "$WORK/raw.sess"
judge_refused "$D" server "$R" "$started"
check "$D: the early data did not reach the server" \
    bash -c "! grep -qF -- '$EARLY' '$WORK/srv.out'"

D="0-RTT refused: OpenSSL client (raw-key session) -> kpsa server (-psk_session), TLS 1.3"
started=0
serve early_server "$KPSA_CNF" "$WORK/handle.sess" && started=1 &&
    converse openssl early_client "$PLAIN_CNF" "$WORK/raw.sess"
judge_refused "$D" server "$R" "$started"
check "$D: the early data did not reach the server" \
    bash -c "! grep -qF -- '$EARLY' '$WORK/srv.out'"

D="0-RTT refused: kpsa client (-psk_session, -early_data) -> OpenSSL server, TLS 1.3"
started=0
serve early_server "$PLAIN_CNF" "$WORK/raw.sess" && started=1 &&
    converse openssl early_client "$KPSA_CNF" "$WORK/handle.sess"
judge_refused "$D" client "$R" "$started"
check "$D: the early data did not reach the server" \
    bash -c "! grep -qF -- '$EARLY' '$WORK/srv.out'"

# --- what is not a handle passes through to the default provider ----------
# no_token DESC: neither side touched the token.
no_token() {
    local s c
    s=$(token_calls "$WORK/srv.err")
    c=$(token_calls "$WORK/cli.err")
    if [ "$s:$c" = 0:0 ]; then
        ok "$1: no token call"
    else
        not_ok "$1: no token call"
        echo "# token calls: server $s, client $c"
    fi
}

timeout 30 openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$WORK/cert.key" -out "$WORK/cert.pem" -subj /CN=localhost \
    -days 1 >/dev/null 2>&1
D="certificate, kpsa loaded on both sides: OpenSSL client -> OpenSSL server, TLS 1.3"
if serve s_server "$KPSA_CNF" -cert "$WORK/cert.pem" -key "$WORK/cert.key" \
    -tls1_3; then
    converse openssl s_client "$KPSA_CNF" -CAfile "$WORK/cert.pem" \
        -verify_return_error -verify_hostname localhost -tls1_3
fi
if [ "$GOT_MSG$GOT_REPLY" = 11 ] &&
    grep -q '^New, TLSv1\.3, Cipher is TLS_' "$WORK/cli.out" &&
    grep -qx 'Verification: OK' "$WORK/cli.out" &&
    grep -q '^CIPHER is TLS_' "$WORK/srv.out"; then
    ok "$D"
else
    not_ok "$D"
    show
fi
no_token "$D"

for mode in dhe ke; do
    D="raw key, no handle, kpsa loaded on both sides: OpenSSL client -> OpenSSL server, TLS 1.3, $(mname $mode)"
    if serve openssl_server "$KPSA_CNF" "$mode" "$KEY"; then
        converse openssl openssl_client "$KPSA_CNF" "$mode" "$KEY"
    fi
    outputs server openssl
    negotiated "$mode"
    if [ "$GOT_MSG$GOT_REPLY" = 11 ] && [ -z "$WHY" ]; then
        ok "$D"
    else
        not_ok "$D"
        echo "# client line arrived: $GOT_MSG; server line arrived: $GOT_REPLY${WHY}"
        show
    fi
    no_token "$D"
done

finish
