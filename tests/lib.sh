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
