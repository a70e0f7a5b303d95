#!/usr/bin/env bash
# An unmodified openssl s_server holding a handle keeps serving through
# token trouble: a lost login, a removed device, a token server that went
# away, a PIN the token refuses. The failed handshake carries a kpsa error
# naming the KpsaId and the cause; the next one, once the token is back,
# succeeds; the handle is never used as key bytes.
here=$(dirname "$0")
# shellcheck source=tests/lib.sh
. "$here/lib.sh"
KPSA=${KPSA:-build/tools/kpsa}
FAULTMOD=${FAULTMOD:-build/tests/faultmod.so}
ID=gw-7@m2m.example.com
SUITE=PSK-AES128-CBC-SHA256

setup_token
umask 077
openssl rand -hex 32 >"$WORK/key"
"$KPSA" import "$ID" --in "$WORK/key" || { echo "Bail out! import"; exit 1; }
HANDLE=$("$KPSA" handle "$ID")

# serve N: s_server with kpsa for N handshakes; its stderr in $WORK/srv.
serve() {
    PORT=$(free_port)
    write_openssl_cnf
    # s_server ends a connection when its standard input closes: hold a
    # FIFO open for it until stop.
    rm -f "$WORK/srv.in"
    mkfifo "$WORK/srv.in"
    OPENSSL_CONF=$OPENSSL_CONF_KPSA timeout 60 openssl s_server \
        -accept "127.0.0.1:$PORT" -nocert -psk "$HANDLE" -psk_identity "$ID" \
        -cipher "$SUITE" -tls1_2 -naccept "$1" -rev <"$WORK/srv.in" \
        >/dev/null 2>"$WORK/srv" &
    SRV=$!
    exec 7>"$WORK/srv.in"
    for _ in $(seq 50); do
        ss -ltn | grep -q "127.0.0.1:$PORT " && return 0
        sleep 0.1
    done
    return 1
}

# handshake: one client with the raw key; 0 when the echo came back.
handshake() {
    local got
    got=$( (echo ping; sleep 0.3) | timeout 10 openssl s_client \
        -connect "127.0.0.1:$PORT" -psk "$(cat "$WORK/key")" \
        -psk_identity "$ID" -cipher "$SUITE" -tls1_2 -quiet 2>/dev/null)
    [ "$got" = gnip ]
}

fails() {
    ! "$@"
}

stop() {
    kill "$SRV" 2>/dev/null
    wait "$SRV" 2>/dev/null
    exec 7>&-
}

# fault CKR: the 5th HMAC fails, in the 2nd of three handshakes.
fault() {
    local rv=$1
    KPSA_MODULE=$FAULTMOD KPSA_FAULT_MODULE=$SOFTHSM_MODULE \
        KPSA_FAULT_FUNC=C_Sign KPSA_FAULT_AT=5 KPSA_FAULT_RV=$rv serve 3
    check "$rv: first handshake" handshake
    check "$rv: second handshake fails" fails handshake
    check "$rv: third handshake succeeds again" handshake
    stop
    check "$rv: the error names the KpsaId and the cause" grep -q \
        "kpsa.*$ID: token '$TOKEN_LABEL': C_Sign failed: $rv" "$WORK/srv"
}

fault CKR_USER_NOT_LOGGED_IN
fault CKR_DEVICE_REMOVED
fault CKR_SESSION_HANDLE_INVALID

# A token served from another process that stops and comes back.
start_p11kit_server
serve 3
check "p11-kit: first handshake" handshake
stop_p11kit_server
check "p11-kit: no handshake while the token server is down" \
    fails handshake
start_p11kit_server
check "p11-kit: handshakes again once it is back" handshake
stop
check "p11-kit: the failure was reported by kpsa" grep -q "kpsa.*$ID" \
    "$WORK/srv"
stop_p11kit_server
export KPSA_MODULE=$SOFTHSM_MODULE
unset P11_KIT_SERVER_ADDRESS

# A PIN the token refuses is sent once, not once per handshake.
echo 0000 >"$WORK/badpin"
KPSA_PIN_SOURCE=file:$WORK/badpin KPSA_DEBUG=1 serve 2
check "wrong PIN: no handshake" fails handshake
check "wrong PIN: none the second time either" fails handshake
stop
check "wrong PIN: CKR_PIN_INCORRECT is reported" grep -q \
    "C_Login failed: CKR_PIN_INCORRECT" "$WORK/srv"
check "wrong PIN: C_Login was called once" \
    [ "$(grep -c 'debug: C_Login' "$WORK/srv")" = 1 ]

# A family with a member missing is refused, not half used.
id=$(printf 'kpsa1:tls12-pms-sha256' | xxd -p | tr -d '\n')
pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$TOKEN_LABEL" --login \
    --pin 1234 --delete-object --type secrkey --id "$id" --label "$ID" \
    >/dev/null 2>&1
serve 1
check "a family missing a member: no handshake" fails handshake
stop
check "and kpsa says the family is incomplete" grep -q \
    "$ID: key family is incomplete" "$WORK/srv"

finish
