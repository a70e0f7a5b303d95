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
KPSA_PROVIDER=$(realpath "${KPSA_PROVIDER:-build/provider/kpsa.so}")

setup_token
umask 077
openssl rand -hex 32 >"$WORK/key"
"$KPSA" import "$ID" --in "$WORK/key" || { echo "Bail out! import"; exit 1; }
HANDLE=$("$KPSA" handle "$ID")

fails() {
    ! "$@"
}

# fault CKR: the 5th HMAC fails, in the 2nd of three handshakes.
fault() {
    local rv=$1
    KPSA_MODULE=$FAULTMOD KPSA_FAULT_MODULE=$SOFTHSM_MODULE \
        KPSA_FAULT_FUNC=C_Sign KPSA_FAULT_AT=5 KPSA_FAULT_RV=$rv psk_serve 3
    check "$rv: first handshake" psk_handshake
    check "$rv: second handshake fails" fails psk_handshake
    check "$rv: third handshake succeeds again" psk_handshake
    psk_stop
    check "$rv: the error names the KpsaId and the cause" grep -q \
        "kpsa.*$ID: token '$TOKEN_LABEL': C_Sign failed: $rv" "$WORK/srv"
}

fault CKR_USER_NOT_LOGGED_IN
fault CKR_DEVICE_REMOVED
fault CKR_SESSION_HANDLE_INVALID

# A token served from another process that stops and comes back.
start_p11kit_server
psk_serve 3
check "p11-kit: first handshake" psk_handshake
stop_p11kit_server
check "p11-kit: no handshake while the token server is down" \
    fails psk_handshake
start_p11kit_server
check "p11-kit: handshakes again once it is back" psk_handshake
psk_stop
check "p11-kit: the failure was reported by kpsa" grep -q "kpsa.*$ID" \
    "$WORK/srv"
stop_p11kit_server
export KPSA_MODULE=$SOFTHSM_MODULE
unset P11_KIT_SERVER_ADDRESS

# A PIN the token refuses is sent once, not once per handshake.
echo 0000 >"$WORK/badpin"
KPSA_PIN_SOURCE=file:$WORK/badpin KPSA_DEBUG=1 psk_serve 2
check "wrong PIN: no handshake" fails psk_handshake
check "wrong PIN: none the second time either" fails psk_handshake
psk_stop
check "wrong PIN: CKR_PIN_INCORRECT is reported" grep -q \
    "C_Login failed: CKR_PIN_INCORRECT" "$WORK/srv"
check "wrong PIN: C_Login was called once" \
    [ "$(grep -c 'debug: C_Login' "$WORK/srv")" = 1 ]

# A key imported while the server runs is found without a restart: an
# unknown handle makes kpsa read the token again, at most once a second.
"$KPSA" delete "$ID" --yes
psk_serve 2
check "a handle of no stored key: no handshake" fails psk_handshake
"$KPSA" import "$ID" --in "$WORK/key"
sleep 1.1
check "the key imported meanwhile: the handshake succeeds" psk_handshake
psk_stop
check "the first handshake said the handle names no key" grep -q \
    "names no key on token '$TOKEN_LABEL'" "$WORK/srv"

# A family with a member missing is refused, not half used.
id=$(printf 'kpsa1:tls12-pms-sha256' | xxd -p | tr -d '\n')
pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$TOKEN_LABEL" --login \
    --pin 1234 --delete-object --type secrkey --id "$id" --label "$ID" \
    >/dev/null 2>&1
psk_serve 1
check "a family missing a member: no handshake" fails psk_handshake
psk_stop
check "and kpsa says the family is incomplete" grep -q \
    "$ID: key family is incomplete" "$WORK/srv"

finish
