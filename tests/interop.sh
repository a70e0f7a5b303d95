#!/usr/bin/env bash
# Interoperability of the kpsa provider: kpsa on one side of a (D)TLS 1.2
# PSK handshake, holding only a handle, and an independent peer holding the
# raw key on the other (OpenSSL's default provider, GnuTLS). A handshake
# passes when a line from the client reaches the server, a line from the
# server reaches the client, and the protocol, suite and extended master
# secret (RFC 7627) are the ones asked for. Then the refusals, ordinary
# handshakes passing through kpsa, and the token calls per handshake.
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

PEER_PID=
CLIENT_PID=
PORT=
N=0

interop_setup 60
# The independent OpenSSL side without extended master secret (OpenSSL
# 3.0 has no -no_ems).
NOEMS_CNF=$WORK/plain-noems.cnf
cat >"$NOEMS_CNF" <<'CNF'
openssl_conf = openssl_init
[openssl_init]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
Options = -ExtendedMasterSecret
CNF

# --- servers and clients: each function execs its program on $PORT ------

vflag() {
    case $1 in
    tls) echo -tls1_2 ;;
    dtls) echo -dtls1_2 ;;
    tls11) echo -tls1_1 ;;
    dtls10) echo -dtls1 ;;
    tls13) echo -tls1_3 ;;
    esac
}

pname() {
    case $1 in
    tls) echo "TLS 1.2" ;;
    dtls) echo "DTLS 1.2" ;;
    tls11) echo "TLS 1.1" ;;
    dtls10) echo "DTLS 1.0" ;;
    tls13) echo "TLS 1.3" ;;
    esac
}

# s_server CONF ARG...: prints what the client sends, sends its standard
# input to the client; s_client CONF ARG... likewise. KPSA_DEBUG passes on.
s_server() {
    local conf=$1
    shift
    exec env OPENSSL_CONF="$conf" timeout 60 openssl s_server \
        -accept "127.0.0.1:$PORT" "$@"
}

s_client() {
    local conf=$1
    shift
    exec env OPENSSL_CONF="$conf" timeout 30 openssl s_client -nocommands \
        -connect "127.0.0.1:$PORT" "$@"
}

# openssl_server CONF PROTO SUITE PSK [NACCEPT]; openssl_client CONF PROTO
# SUITE PSK
openssl_server() {
    s_server "$1" -nocert -psk "$4" -psk_identity "$ID" -cipher "$3" \
        "$(vflag "$2")" -naccept "${5:-1}"
}

openssl_client() {
    s_client "$1" -psk "$4" -psk_identity "$ID" -cipher "$3" "$(vflag "$2")"
}

# gnutls_server PROTO PRIORITY PSKPASSWD: echoes what the client sends.
gnutls_server() {
    local udp=()
    [ "$1" = dtls ] && udp=(--udp)
    exec timeout 60 gnutls-serv "${udp[@]}" --port "$PORT" --echo \
        --pskpasswd "$3" --priority "$2"
}

gnutls_client() {
    local udp=()
    [ "$1" = dtls ] && udp=(--udp)
    exec timeout 30 gnutls-cli "${udp[@]}" --port "$PORT" \
        --pskusername "$ID" --pskkey "$3" --priority "$2" 127.0.0.1
}

# gnutls_priority PROTO SUITE EMS: allows exactly one suite of (D)TLS 1.2,
# without extended master secret when EMS is "off".
gnutls_priority() {
    local v=TLS1.2 kx c m p
    [ "$1" = dtls ] && v=DTLS1.2
    case $2 in
    PSK-AES128-CBC-SHA256) kx=PSK c=AES-128-CBC m=SHA256 ;;
    PSK-AES128-GCM-SHA256) kx=PSK c=AES-128-GCM m=AEAD ;;
    PSK-AES256-GCM-SHA384) kx=PSK c=AES-256-GCM m=AEAD ;;
    PSK-CHACHA20-POLY1305) kx=PSK c=CHACHA20-POLY1305 m=AEAD ;;
    PSK-AES128-CCM8) kx=PSK c=AES-128-CCM-8 m=AEAD ;;
    DHE-PSK-AES128-CBC-SHA256) kx=DHE-PSK c=AES-128-CBC m=SHA256 ;;
    ECDHE-PSK-AES128-CBC-SHA256) kx=ECDHE-PSK c=AES-128-CBC m=SHA256 ;;
    ECDHE-PSK-AES256-CBC-SHA384) kx=ECDHE-PSK c=AES-256-CBC m=SHA384 ;;
    *) kx=PSK c=AES-128-CBC m=SHA1 ;; # unused: GnuTLS is not asked
    esac
    p="NORMAL:-VERS-ALL:+VERS-$v:-KX-ALL:+$kx:-CIPHER-ALL:+$c:-MAC-ALL:+$m"
    [ "$3" = off ] && p=$p:%NO_SESSION_HASH
    printf '%s\n' "$p"
}

# serve PROTO FUNCTION ARG...: starts a server on a free port of 127.0.0.1,
# its standard input on our fd 8, its output in $WORK/srv.out and srv.err;
# waits until it listens (at most 5 s), trying three ports.
serve() {
    local flag=-ltn
    case $1 in dtls*) flag=-lun ;; esac
    shift
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
            ss -H "$flag" "sport = :$PORT" | grep -q . && return 0
            kill -0 "$PEER_PID" 2>/dev/null || break
            sleep 0.05
        done
        stop_by_fd PEER_PID 8
    done
    return 1
}

# await FILE TEXT TICKS: waits until FILE holds TEXT, at most TICKS * 50 ms
# and while the client runs.
await() {
    for _ in $(seq "$3"); do
        grep -qF -- "$2" "$1" && return 0
        kill -0 "$CLIENT_PID" 2>/dev/null || break
        sleep 0.05
    done
    grep -qF -- "$2" "$1"
}

# converse SERVER-KIND FUNCTION ARG...: runs a client (output in
# $WORK/cli.out, cli.err) that sends $MSG; an openssl server (KIND openssl)
# must print it, then sends $REPLY; gnutls-serv echoes $MSG. GOT_MSG and
# GOT_REPLY say what arrived. The client is stopped, then the server
# unless KEEP=1; their status in RC_CLIENT and RC_SERVER. TICKS bounds the
# wait for the handshake.
converse() {
    local kind=$1
    shift
    N=$((N + 1))
    MSG="hello-from-client-$N-$$"
    REPLY="hello-from-server-$N-$$"
    GOT_MSG=0
    GOT_REPLY=0
    rm -f "$WORK/cli.in"
    mkfifo "$WORK/cli.in"
    "$@" <"$WORK/cli.in" >"$WORK/cli.out" 2>"$WORK/cli.err" &
    CLIENT_PID=$!
    exec 9>"$WORK/cli.in"
    (printf '%s\n' "$MSG" >&9) 2>/dev/null
    if [ "$kind" = openssl ]; then
        if await "$WORK/srv.out" "$MSG" "${TICKS:-200}"; then
            GOT_MSG=1
            (printf '%s\n' "$REPLY" >&8) 2>/dev/null
            await "$WORK/cli.out" "$REPLY" 100 && GOT_REPLY=1
        fi
    elif await "$WORK/cli.out" "$MSG" "${TICKS:-200}"; then
        GOT_MSG=1
        GOT_REPLY=1
    fi
    stop_by_fd CLIENT_PID 9
    RC_CLIENT=$RC_STOP
    RC_SERVER=
    [ "${KEEP:-0}" = 1 ] && return
    stop_by_fd PEER_PID 8
    RC_SERVER=$RC_STOP
}

# show [LINES]: the ends of both sides' output, as TAP comments.
show() {
    local f
    echo "# client status $RC_CLIENT, server status $RC_SERVER"
    for f in srv.out srv.err cli.out cli.err; do
        echo "# --- $f"
        grep -v -E '^ +[0-9a-f]{4} - |^-----|^[A-Za-z0-9+/=]{64}$' \
            "$WORK/$f" | tail -n "${1:-8}" | sed 's/^/#   /'
    done
}

# negotiated PROTO SUITE EMS CLIENT-KIND: the client's report (for a
# GnuTLS client, with the OpenSSL server's) matches what was asked.
negotiated() {
    local proto=$1 suite=$2 ems=$3 pv=TLSv1.2 yn=yes
    [ "$proto" = dtls ] && pv=DTLSv1.2
    [ "$ems" = off ] && yn=no
    if [ "$4" = openssl ]; then
        grep -qx "    Protocol  : $pv" "$WORK/cli.out" &&
            grep -qx "    Cipher    : $suite" "$WORK/cli.out" &&
            grep -qx "    Extended master secret: $yn" "$WORK/cli.out"
        return
    fi
    grep -qF -- "- Description: (${pv%v1.2}1.2-" "$WORK/cli.out" &&
        grep -qx "CIPHER is $suite" "$WORK/srv.out" || return 1
    if [ "$ems" = off ]; then
        ! grep -q '^- Options:.*extended master secret' "$WORK/cli.out"
    else
        grep -q '^- Options:.*extended master secret' "$WORK/cli.out"
    fi
}

# The token module (SoftHSM's ENGINE_by_id("rdrand")) leaves errors on
# OpenSSL's error queue while kpsa opens the token inside a handshake.
foreign_errors() {
    grep -q 'ENGINE_by_id:no such engine' "$1"
}

# judge DESC SIDE PROTO SUITE EMS CLIENT-KIND: one TAP line for the
# conversation that just ended.
judge() {
    local desc=$1 side=$2
    if [ "$GOT_MSG$GOT_REPLY" = 11 ] &&
        negotiated "$3" "$4" "$5" "$6"; then
        ok "$desc"
        return
    fi
    # gnutls-cli 3.7.9 dies in print_info (gnutls_psk_server_get_username)
    # after every (EC)DHE-PSK handshake, with plain OpenSSL as well: judge
    # by the kpsa server, which verified the client's Finished and sent its
    # own, which gnutls-cli accepted before crashing.
    if [ "$6" = gnutls ] && [ "$RC_CLIENT" = 139 ] &&
        [[ $4 == *DHE-PSK-* ]] &&
        grep -qx "CIPHER is $4" "$WORK/srv.out" &&
        grep -q '^ *1 server accepts that finished' "$WORK/srv.out"; then
        ok "$desc (handshake only: gnutls-cli 3.7.9 crashes after (EC)DHE-PSK)"
        return
    fi
    not_ok "$desc"
    echo "# client line arrived: $GOT_MSG; server line arrived: $GOT_REPLY"
    if [ "$side" = client ] && foreign_errors "$WORK/cli.err" &&
        grep -q -e '^CIPHER is' -e '^- Description:' "$WORK/srv.out"; then
        echo "# kpsa BUG: the server completed the handshake, so the keys"
        echo "# matched; s_client then failed on errors that the token module"
        echo "# left on OpenSSL's error queue during kpsa's PRF call"
    fi
    show
}

# cell SIDE PEER PROTO SUITE EMS: one handshake of the matrix. SIDE is
# kpsa's role (server, client); PEER (openssl, gnutls) holds the raw key
# and turns extended master secret off when EMS is "off".
cell() {
    local side=$1 peer=$2 proto=$3 suite=$4 ems=$5 desc pconf prio Peer
    Peer=OpenSSL
    [ "$peer" = gnutls ] && Peer=GnuTLS
    pconf=$PLAIN_CNF
    [ "$ems" = off ] && pconf=$NOEMS_CNF
    prio=$(gnutls_priority "$proto" "$suite" "$ems")
    desc="$(pname "$proto"), $suite, EMS $ems"
    if [ "$side" = server ]; then
        desc="$Peer client -> kpsa server, $desc"
        if serve "$proto" openssl_server "$KPSA_CNF" "$proto" "$suite" \
            "$HANDLE"; then
            if [ "$peer" = openssl ]; then
                converse openssl openssl_client "$pconf" "$proto" "$suite" \
                    "$KEY"
            else
                converse openssl gnutls_client "$proto" "$prio" "$KEY"
            fi
            judge "$desc" server "$proto" "$suite" "$ems" "$peer"
            return
        fi
    else
        desc="kpsa client -> $Peer server, $desc"
        if if [ "$peer" = openssl ]; then
            serve "$proto" openssl_server "$pconf" "$proto" "$suite" "$KEY"
        else
            serve "$proto" gnutls_server "$proto" "$prio" "$WORK/pskpasswd"
        fi; then
            converse "$peer" openssl_client "$KPSA_CNF" "$proto" "$suite" \
                "$HANDLE"
            judge "$desc" client "$proto" "$suite" "$ems" openssl
            return
        fi
    fi
    not_ok "$desc"
    echo "# the server did not listen"
    sed 's/^/#   /' "$WORK/srv.err"
}

# --- the matrix ------------------------------------------------------------
for suite in PSK-AES128-CBC-SHA256 PSK-AES128-GCM-SHA256 \
    PSK-AES256-GCM-SHA384 PSK-CHACHA20-POLY1305 PSK-AES128-CCM8 \
    DHE-PSK-AES128-CBC-SHA256 ECDHE-PSK-AES128-CBC-SHA256; do
    for side in server client; do
        for peer in openssl gnutls; do
            cell "$side" "$peer" tls "$suite" on
        done
    done
done
for suite in PSK-AES128-CCM8 PSK-AES128-CBC-SHA256 PSK-AES256-GCM-SHA384; do
    for side in server client; do
        for peer in openssl gnutls; do
            cell "$side" "$peer" dtls "$suite" on
        done
    done
done
# Without extended master secret the PRF seed holds the randoms, not the
# session hash; the peer declines it.
for ps in tls:PSK-AES128-CBC-SHA256 tls:PSK-AES256-GCM-SHA384 \
    dtls:PSK-AES128-CCM8; do
    for side in server client; do
        for peer in openssl gnutls; do
            cell "$side" "$peer" "${ps%%:*}" "${ps#*:}" off
        done
    done
done

# --- handshakes that must fail ----------------------------------------------
# refused DESC SIDE PEER PROTO SUITE KPSA-PSK PEER-KEY [TEXT]: nothing may
# arrive, no side may report an established connection, and TEXT, when
# given, must be on kpsa's standard error.
refused() {
    local desc=$1 side=$2 peer=$3 proto=$4 suite=$5 kpsk=$6 pkey=$7
    local text=${8:-} prio kerr started=0 pfile=$WORK/pskpasswd
    prio=$(gnutls_priority "$proto" "$suite" on)
    [ "$pkey" = "$WRONG" ] && pfile=$WORK/pskpasswd-wrong
    case $proto in dtls*) TICKS=60 ;; *) TICKS=200 ;; esac
    if [ "$side" = server ]; then
        kerr=$WORK/srv.err
        serve "$proto" openssl_server "$KPSA_CNF" "$proto" "$suite" \
            "$kpsk" && started=1 &&
            if [ "$peer" = openssl ]; then
                converse openssl openssl_client "$PLAIN_CNF" "$proto" \
                    "$suite" "$pkey"
            else
                converse openssl gnutls_client "$proto" "$prio" "$pkey"
            fi
    else
        kerr=$WORK/cli.err
        if [ "$peer" = openssl ]; then
            serve "$proto" openssl_server "$PLAIN_CNF" "$proto" "$suite" \
                "$pkey"
        else
            serve "$proto" gnutls_server "$proto" "$prio" "$pfile"
        fi && started=1 &&
            converse "$peer" openssl_client "$KPSA_CNF" "$proto" "$suite" \
                "$kpsk"
    fi
    TICKS=
    if [ "$started" = 1 ] && [ "$GOT_MSG$GOT_REPLY" = 00 ] &&
        ! grep -q -e '^CIPHER is' -e '^- Options:' "$WORK/srv.out" &&
        ! grep -q '^- Options:' "$WORK/cli.out" &&
        { [ -z "$text" ] || grep -qF -- "$text" "$kerr"; }; then
        ok "$desc"
    else
        not_ok "$desc"
        [ -n "$text" ] && echo "# wanted on kpsa's stderr: $text"
        show 12
    fi
}

S=PSK-AES128-CBC-SHA256
D=PSK-AES128-CCM8
for peer in openssl gnutls; do
    [ "$peer" = gnutls ] && P=GnuTLS || P=OpenSSL
    refused "wrong key: $P client -> kpsa server, TLS 1.2, $S, EMS on" \
        server "$peer" tls "$S" "$HANDLE" "$WRONG"
    refused "wrong key: kpsa client -> $P server, TLS 1.2, $S, EMS on" \
        client "$peer" tls "$S" "$HANDLE" "$WRONG"
    refused "wrong key: $P client -> kpsa server, DTLS 1.2, $D, EMS on" \
        server "$peer" dtls "$D" "$HANDLE" "$WRONG"
    refused "wrong key: kpsa client -> $P server, DTLS 1.2, $D, EMS on" \
        client "$peer" dtls "$D" "$HANDLE" "$WRONG"
done

E=ECDHE-PSK-AES256-CBC-SHA384
R="fits in one SHA-384 block"
refused "refused, 32-byte key: OpenSSL client -> kpsa server, TLS 1.2, $E, EMS on" \
    server openssl tls "$E" "$HANDLE" "$KEY" "$R"
refused "refused, 32-byte key: GnuTLS client -> kpsa server, TLS 1.2, $E, EMS on" \
    server gnutls tls "$E" "$HANDLE" "$KEY" "$R"
refused "refused, 32-byte key: kpsa client -> OpenSSL server, TLS 1.2, $E, EMS on" \
    client openssl tls "$E" "$HANDLE" "$KEY" "$R"
refused "refused, 32-byte key: kpsa client -> GnuTLS server, TLS 1.2, $E, EMS on" \
    client gnutls tls "$E" "$HANDLE" "$KEY" "$R"

O=PSK-AES128-CBC-SHA@SECLEVEL=0
R="TLS 1.0 and 1.1 have no key here"
refused "refused, MD5-SHA1 PRF: OpenSSL client -> kpsa server, TLS 1.1, PSK-AES128-CBC-SHA, EMS on" \
    server openssl tls11 "$O" "$HANDLE" "$KEY" "$R"
refused "refused, MD5-SHA1 PRF: kpsa client -> OpenSSL server, TLS 1.1, PSK-AES128-CBC-SHA, EMS on" \
    client openssl tls11 "$O" "$HANDLE" "$KEY" "$R"
refused "refused, MD5-SHA1 PRF: OpenSSL client -> kpsa server, DTLS 1.0, PSK-AES128-CBC-SHA, EMS on" \
    server openssl dtls10 "$O" "$HANDLE" "$KEY" "$R"

R="names no key"
refused "refused, handle of no key: OpenSSL client -> kpsa server, TLS 1.2, $S, EMS on" \
    server openssl tls "$S" "$NOKEY" "$KEY" "$R"
refused "refused, handle of no key: kpsa client -> OpenSSL server, TLS 1.2, $S, EMS on" \
    client openssl tls "$S" "$NOKEY" "$KEY" "$R"

# --- what is not a handle passes through to the default provider ----------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$WORK/cert.key" -out "$WORK/cert.pem" -subj /CN=localhost \
    -days 1 >/dev/null 2>&1
C=ECDHE-ECDSA-AES128-GCM-SHA256
if serve tls s_server "$KPSA_CNF" -cert "$WORK/cert.pem" \
    -key "$WORK/cert.key" -cipher "$C" -tls1_2 -naccept 1; then
    converse openssl s_client "$KPSA_CNF" -CAfile "$WORK/cert.pem" \
        -verify_return_error -verify_hostname localhost -cipher "$C" -tls1_2
fi
judge "certificate, kpsa loaded on both sides: OpenSSL client -> OpenSSL server, TLS 1.2, $C, EMS on" \
    none tls "$C" on openssl

if serve tls openssl_server "$KPSA_CNF" tls "$S" "$KEY"; then
    converse openssl openssl_client "$KPSA_CNF" tls "$S" "$KEY"
fi
judge "raw key, no handle, kpsa loaded on both sides: OpenSSL client -> OpenSSL server, TLS 1.2, $S, EMS on" \
    none tls "$S" on openssl

# HMAC keys made the legacy way (EVP_PKEY_new_mac_key, as openssl dgst
# -mac HMAC does) come from kpsa's HMAC key type when kpsa is preferred.
hk=00112233445566778899aabbccddeeff
want=$(printf abc | OPENSSL_CONF=$PLAIN_CNF openssl dgst -sha256 -mac HMAC \
    -macopt "hexkey:$hk" 2>&1)
got=$(printf abc | OPENSSL_CONF=$KPSA_CNF openssl dgst -sha256 -mac HMAC \
    -macopt "hexkey:$hk" 2>&1)
check "openssl dgst -mac HMAC with kpsa loaded: the default provider's MAC" \
    [ "$got" = "$want" ]

# --- the error queue: an application sees only its own errors -------------
# The server reads the client's close_notify as a clean end (DONE), the
# client reads the server's line; both fail when the token module's errors
# stay on the queue (seen with SoftHSM loaded into the TLS process).
if serve tls openssl_server "$KPSA_CNF" tls "$S" "$HANDLE"; then
    converse openssl openssl_client "$PLAIN_CNF" tls "$S" "$KEY"
fi
if [ "$GOT_MSG" = 1 ] && grep -qx DONE "$WORK/srv.out" &&
    ! foreign_errors "$WORK/srv.err"; then
    ok "no foreign errors left on the queue: OpenSSL client -> kpsa server, TLS 1.2, $S, EMS on"
else
    not_ok "no foreign errors left on the queue: OpenSSL client -> kpsa server, TLS 1.2, $S, EMS on"
    echo "# kpsa BUG: s_server ended the connection with ERROR, not DONE"
    show 6
fi
if serve tls openssl_server "$PLAIN_CNF" tls "$S" "$KEY"; then
    converse openssl openssl_client "$KPSA_CNF" tls "$S" "$HANDLE"
fi
if [ "$GOT_MSG$GOT_REPLY" = 11 ] && ! foreign_errors "$WORK/cli.err"; then
    ok "no foreign errors left on the queue: kpsa client -> OpenSSL server, TLS 1.2, $S, EMS on"
else
    not_ok "no foreign errors left on the queue: kpsa client -> OpenSSL server, TLS 1.2, $S, EMS on"
    echo "# kpsa BUG: s_client gave up after the handshake on errors it did"
    echo "# not cause"
    show 6
fi

# --- token calls per handshake (KPSA_DEBUG=1 logs each call) --------------
# calls NAME FILE: how many successful calls of NAME FILE logs.
calls() {
    grep -cx "kpsa: debug: $1 -> CKR_OK" "$2"
}

debug_server() {
    KPSA_DEBUG=1 openssl_server "$@"
}

# Two handshakes on one server: four HMACs each (SHA-256 P_hash for a
# 48-byte master secret), and the second finds its key in the index.
if serve tls debug_server "$KPSA_CNF" tls "$S" "$HANDLE" 2; then
    KEEP=1 converse openssl openssl_client "$PLAIN_CNF" tls "$S" "$KEY"
    first=$GOT_MSG$GOT_REPLY
    head -n "$(wc -l <"$WORK/srv.err")" "$WORK/srv.err" >"$WORK/debug1"
    converse openssl openssl_client "$PLAIN_CNF" tls "$S" "$KEY"
    tail -n +"$(($(wc -l <"$WORK/debug1") + 1))" "$WORK/srv.err" \
        >"$WORK/debug2"
    second=$GOT_MSG$GOT_REPLY
else
    first=00 second=00
    : >"$WORK/debug1"
    : >"$WORK/debug2"
fi
check "calls, handshake 1: OpenSSL client -> kpsa server, TLS 1.2, $S, EMS on: 4 C_Sign" \
    [ "$first:$(calls C_Sign "$WORK/debug1")" = 11:4 ]
check "calls, handshake 1: OpenSSL client -> kpsa server, TLS 1.2, $S, EMS on: builds the index (C_FindObjectsInit)" \
    [ "$(calls C_FindObjectsInit "$WORK/debug1")" -ge 1 ]
check "calls, handshake 2: OpenSSL client -> kpsa server, TLS 1.2, $S, EMS on: 4 C_Sign" \
    [ "$second:$(calls C_Sign "$WORK/debug2")" = 11:4 ]
check "calls, handshake 2: OpenSSL client -> kpsa server, TLS 1.2, $S, EMS on: no C_FindObjectsInit, no C_Login" \
    [ "$(calls C_FindObjectsInit "$WORK/debug2"):$(calls C_Login "$WORK/debug2")" = 0:0 ]

# one_call_count SUITE SIGN DIGESTKEY: one handshake, counted calls.
one_call_count() {
    local got=00
    if serve tls debug_server "$KPSA_CNF" tls "$1" "$HANDLE"; then
        converse openssl openssl_client "$PLAIN_CNF" tls "$1" "$KEY"
        got=$GOT_MSG$GOT_REPLY
    fi
    local have
    have="$got:$(calls C_Sign "$WORK/srv.err"):$(calls C_DigestKey "$WORK/srv.err")"
    if [ "$have" = "11:$2:$3" ]; then
        ok "calls: OpenSSL client -> kpsa server, TLS 1.2, $1, EMS on: $2 C_Sign, $3 C_DigestKey"
    else
        not_ok "calls: OpenSSL client -> kpsa server, TLS 1.2, $1, EMS on: $2 C_Sign, $3 C_DigestKey"
        echo "# lines arrived, C_Sign, C_DigestKey: $have"
    fi
}
one_call_count PSK-AES256-GCM-SHA384 2 0
one_call_count ECDHE-PSK-AES128-CBC-SHA256 0 1
one_call_count DHE-PSK-AES128-CBC-SHA256 0 1

finish
