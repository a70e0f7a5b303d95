# Shared by the token tests: a SoftHSM2 token in a temporary directory, TAP
# output, and checks of exit status and exact error lines.
# shellcheck shell=bash

set -u

SOFTHSM_MODULE=${SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
P11KIT_CLIENT=${P11KIT_CLIENT:-$(pkg-config --variable=p11_module_path \
    p11-kit-1 2>/dev/null)/p11-kit-client.so}
TOKEN_LABEL=kpsa-test
T_N=0
T_FAILED=0
SERVER_PID=

ok() {
    T_N=$((T_N + 1))
    echo "ok $T_N - $*"
}

not_ok() {
    T_N=$((T_N + 1))
    T_FAILED=$((T_FAILED + 1))
    echo "not ok $T_N - $*"
}

# check DESC COMMAND...: passes when the command succeeds.
check() {
    local desc=$1
    shift
    if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}

# p11-kit server forks a process per client connection: stop those too.
stop_p11kit_server() {
    [ -n "$SERVER_PID" ] || return 0
    pkill -P "$SERVER_PID" 2>/dev/null
    kill "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
    SERVER_PID=
}

cleanup() {
    stop_p11kit_server
    [ -n "${WORK:-}" ] && rm -rf "$WORK"
}

finish() {
    echo "1..$T_N"
    cleanup
    [ "$T_FAILED" -eq 0 ]
}

# A fresh token directory and one initialised token, user PIN 1234.
setup_token() {
    WORK=$(mktemp -d)
    trap cleanup EXIT
    mkdir -p "$WORK/tokens"
    printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\n%s\n' \
        "$WORK" 'log.level = ERROR' >"$WORK/softhsm2.conf"
    export SOFTHSM2_CONF=$WORK/softhsm2.conf
    softhsm2-util --init-token --free --label "$TOKEN_LABEL" --so-pin 5678 \
        --pin 1234 >/dev/null || { echo "Bail out! softhsm2-util"; exit 1; }
    echo 1234 >"$WORK/pin"
    export KPSA_MODULE=$SOFTHSM_MODULE
    export KPSA_TOKEN="pkcs11:token=$TOKEN_LABEL"
    export KPSA_PIN_SOURCE=file:$WORK/pin
}

# Serves the token from another process; kpsa then loads p11-kit-client.so.
start_p11kit_server() {
    local sock=$WORK/p11kit.sock
    p11-kit server -f -n "$sock" --provider "$SOFTHSM_MODULE" \
        "pkcs11:token=$TOKEN_LABEL" >"$WORK/p11kit.out" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 50); do
        [ -S "$sock" ] && break
        sleep 0.1
    done
    [ -S "$sock" ] || { echo "Bail out! p11-kit server did not start"; exit 1; }
    export P11_KIT_SERVER_ADDRESS=unix:path=$sock
    export KPSA_MODULE=$P11KIT_CLIENT
}

# run COMMAND...: keeps status in RC, output in $WORK/out and $WORK/err.
run() {
    "$@" >"$WORK/out" 2>"$WORK/err"
    RC=$?
}

# expect DESC STATUS STDERR COMMAND...: exact status and whole stderr.
expect() {
    local desc=$1 status=$2 stderr=$3
    shift 3
    run "$@"
    if [ "$RC" -eq "$status" ] && [ "$(cat "$WORK/err")" = "$stderr" ]; then
        ok "$desc"
    else
        not_ok "$desc"
        echo "# status $RC (want $status); stderr:"
        sed 's/^/#   /' "$WORK/err"
        echo "# wanted:"
        echo "#   $stderr"
    fi
}

# The token's object files: equal snapshots mean the token is unchanged.
snapshot() {
    find "$WORK/tokens" -name '*.object' -printf '%f\n' | sort
}

# An openssl.cnf that loads the default provider and kpsa, and prefers
# kpsa's algorithms where it has them; exported as OPENSSL_CONF_KPSA.
write_openssl_cnf() {
    local cnf=$WORK/openssl-kpsa.cnf
    cat >"$cnf" <<CNF
openssl_conf = openssl_init
[openssl_init]
providers = provider_sect
alg_section = algorithm_sect
[provider_sect]
default = default_sect
kpsa = kpsa_sect
[default_sect]
activate = 1
[kpsa_sect]
module = $KPSA_PROVIDER
activate = 1
kpsa-pkcs11-module = $KPSA_MODULE
kpsa-token = $KPSA_TOKEN
kpsa-pin-source = $KPSA_PIN_SOURCE
[algorithm_sect]
default_properties = ?provider=kpsa
CNF
    export OPENSSL_CONF_KPSA=$cnf
}

# skip DESC: a TAP line for a check that cannot run in this build.
skip() {
    T_N=$((T_N + 1))
    echo "ok $T_N - $* # SKIP"
}

# An unmodified openssl program cannot load a provider built with
# AddressSanitizer; the sanitizer build runs those checks in-process.
provider_instrumented() {
    ldd "$KPSA_PROVIDER" 2>/dev/null | grep -q -e libasan -e libtsan
}

# free_port: a TCP and UDP port on 127.0.0.1 that nothing listens on now.
free_port() {
    python3 -c '
import socket
while True:
    t = socket.socket(); t.bind(("127.0.0.1", 0)); port = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", port))
    except OSError:
        continue
    print(port); break'
}

# psk_serve N [PROTO] [SUITE]: an unmodified openssl s_server using kpsa
# with $HANDLE for $ID, for N connections, on a free port of 127.0.0.1
# ($PORT); PROTO is tls1_2 (default), dtls1_2 or tls1_3 (SUITE then only
# matters to TLS 1.2). It prints what clients
# send to $WORK/srv.out, its errors to $WORK/srv; PID in SRV. Needs
# KPSA_PROVIDER; writes the openssl.cnf from the current KPSA_* settings.
psk_serve() {
    local proto=${2:-tls1_2} flag=-ltn
    [ "$proto" = dtls1_2 ] && flag=-lun
    PSK_PROTO=$proto
    PSK_SUITE=${3:-PSK-AES128-CBC-SHA256}
    PORT=$(free_port)
    write_openssl_cnf
    # s_server ends a connection when its standard input closes: hold a
    # FIFO open for it until psk_stop.
    rm -f "$WORK/srv.in"
    mkfifo "$WORK/srv.in"
    OPENSSL_CONF=$OPENSSL_CONF_KPSA timeout 60 openssl s_server \
        -accept "127.0.0.1:$PORT" -nocert -psk "$HANDLE" -psk_identity "$ID" \
        -cipher "$PSK_SUITE" "-$proto" -naccept "$1" -quiet \
        <"$WORK/srv.in" >"$WORK/srv.out" 2>"$WORK/srv" &
    SRV=$!
    exec 7>"$WORK/srv.in"
    for _ in $(seq 50); do
        ss -H "$flag" "sport = :$PORT" | grep -q . && return 0
        sleep 0.1
    done
    return 1
}

# psk_handshake: one client holding the raw key ($WORK/key) for the server
# psk_serve started; 0 when the line it sent reached the server.
PSK_N=0
psk_handshake() {
    local line
    PSK_N=$((PSK_N + 1))
    line="ping-$PSK_N-$$"
    (echo "$line"; sleep 0.3) | timeout 10 openssl s_client -brief \
        -connect "127.0.0.1:$PORT" -psk "$(cat "$WORK/key")" \
        -psk_identity "$ID" -cipher "$PSK_SUITE" "-$PSK_PROTO" \
        >/dev/null 2>&1
    for _ in $(seq 20); do
        grep -qx -- "$line" "$WORK/srv.out" && return 0
        sleep 0.05
    done
    return 1
}

psk_stop() {
    kill "$SRV" 2>/dev/null
    wait "$SRV" 2>/dev/null
    exec 7>&-
}

# stop_by_fd PIDVAR FD [TICKS]: closes the process's standard input (our
# FD), gives it TICKS * 50 ms (default 3 s) to end on its own, then ends
# it; RC_STOP holds its exit status, and PIDVAR is emptied.
stop_by_fd() {
    local var=$1 fd=$2 ticks=${3:-60} pid=${!1}
    eval "exec $fd>&-"
    RC_STOP=
    [ -n "$pid" ] || return 0
    for _ in $(seq "$ticks"); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    RC_STOP=$?
    printf -v "$var" '%s' ''
}

# interop_setup TICKS: what the interoperability matrices share. A token
# (behind p11-kit server when P11KIT=1), an exit trap that stops the peer
# (fd 8) and the client (fd 9) within TICKS * 50 ms, a 32-byte key ID
# imported with its HANDLE (hex), a WRONG key, NOKEY (a well-formed handle
# of no key), KPSA_CNF loading kpsa, PLAIN_CNF with the default provider
# only, pskpasswd files for GnuTLS, and a check that openssl loads kpsa.
interop_setup() {
    setup_token
    [ "${P11KIT:-0}" = 1 ] && start_p11kit_server
    # shellcheck disable=SC2064 # the tick count is fixed now
    trap "stop_by_fd CLIENT_PID 9 $1; stop_by_fd PEER_PID 8 $1; cleanup" EXIT
    umask 077
    ID=dev-01@example.com
    openssl rand -hex 32 >"$WORK/key"
    openssl rand -hex 32 >"$WORK/wrong"
    KEY=$(cat "$WORK/key")
    WRONG=$(cat "$WORK/wrong")
    expect "import a 32-byte key" 0 "" "$KPSA" import "$ID" --in "$WORK/key"
    run "$KPSA" handle "$ID"
    HANDLE=$(cat "$WORK/out")
    check "the handle is kpsa1. and 26 hex digits, in hex" bash -c \
        "printf '%s' '$HANDLE' | xxd -r -p | grep -qx 'kpsa1\.[0-9a-f]\{26\}'"
    NOKEY=$(printf 'kpsa1.%026d' 0 | xxd -p -c 64)
    write_openssl_cnf
    KPSA_CNF=$OPENSSL_CONF_KPSA
    PLAIN_CNF=$WORK/plain.cnf
    printf 'openssl_conf = openssl_init\n[openssl_init]\n' >"$PLAIN_CNF"
    printf '%s:%s\n' "$ID" "$KEY" >"$WORK/pskpasswd"
    printf '%s:%s\n' "$ID" "$WRONG" >"$WORK/pskpasswd-wrong"
    run env OPENSSL_CONF="$KPSA_CNF" openssl list -providers
    if grep -q '^  kpsa$' "$WORK/out"; then
        ok "openssl loads kpsa from the generated openssl.cnf"
    else
        echo "Bail out! openssl does not load $KPSA_PROVIDER"
        exit 1
    fi
}
