#!/usr/bin/env bash
# Every PKCS#11 call the CLI and the provider make, logged by OpenSC's
# pkcs11-spy between kpsa and SoftHSM2: no key value read, no wrap, no
# copy, no attribute change, every key created sensitive and not
# extractable; handshakes of an unmodified openssl s_server ask only for
# HMACs and digests. A control run of
# an independent tool that does try to read a key shows the check can fail.
here=$(dirname "$0")
# shellcheck source=tests/lib.sh
. "$here/lib.sh"
KPSA=${KPSA:-build/tools/kpsa}
KPSA_PROVIDER=$(realpath "${KPSA_PROVIDER:-build/provider/kpsa.so}")
SPY=$(dirname "$P11KIT_CLIENT")/pkcs11-spy.so

[ -f "$SPY" ] || { echo "1..0 # SKIP no pkcs11-spy.so"; exit 0; }
setup_token
umask 077
openssl rand -hex 32 >"$WORK/key"
export PKCS11SPY=$SOFTHSM_MODULE

# logged DESC ARGS...: kpsa through the spy; its call log must pass.
logged() {
    local desc=$1 log=$WORK/calls.$T_N
    shift
    PKCS11SPY_OUTPUT=$log "$KPSA" --module "$SPY" "$@" >/dev/null 2>&1
    if python3 "$here/calllog.py" "$log" >"$WORK/problems"; then
        ok "call log of $desc"
    else
        not_ok "call log of $desc"
        sed 's/^/# /' "$WORK/problems"
    fi
}

logged "import" import a@example.com --in "$WORK/key" --tls13-sha384
logged "generate" generate g@example.com --out "$WORK/g"
logged "a refused shared key" import b@example.com --in "$WORK/key"
logged "list" list
logged "show" show a@example.com
logged "check" check a@example.com
logged "delete" delete a@example.com --yes
logged "delete of a generated key" delete g@example.com --yes

# handshakes PROTO SUITE: two handshakes of s_server with kpsa through the
# spy; the log must pass and hold the token's HMACs or digests.
handshakes() {
    local log=$WORK/hs.$T_N got
    KPSA_MODULE=$SPY PKCS11SPY_OUTPUT=$log psk_serve 2 "$1" "$2"
    psk_handshake && psk_handshake
    got=$?
    psk_stop
    if [ "$got" = 0 ] && python3 "$here/calllog.py" "$log" >"$WORK/problems" &&
        grep -Eq '^[0-9]+: C_(Sign|DigestKey)$' "$log"; then
        ok "call log of two handshakes, $1, $2"
    else
        not_ok "call log of two handshakes, $1, $2 (handshakes: $got)"
        sed 's/^/# /' "$WORK/problems" "$WORK/srv" | tail -20
    fi
}

ID=hs@example.com
"$KPSA" import "$ID" --in "$WORK/key" --allow-shared-key
HANDLE=$("$KPSA" handle "$ID")
for ps in tls1_2:PSK-AES128-CBC-SHA256 tls1_2:PSK-AES256-GCM-SHA384 \
    tls1_2:ECDHE-PSK-AES128-CBC-SHA256 dtls1_2:PSK-AES128-CCM8 \
    tls1_3:PSK-AES128-CBC-SHA256; do
    if provider_instrumented; then
        skip "call log of two handshakes, ${ps%%:*}, ${ps#*:} (sanitizer build)"
    else
        handshakes "${ps%%:*}" "${ps#*:}"
    fi
done

"$KPSA" import c@example.com --in "$WORK/key" --allow-shared-key
id=$(printf 'kpsa1:kpsa' | xxd -p)
PKCS11SPY_OUTPUT=$WORK/control pkcs11-tool --module "$SPY" --login \
    --pin 1234 --token-label "$TOKEN_LABEL" --read-object --type secrkey \
    --label c@example.com --id "$id" >/dev/null 2>&1
check "control: a tool that asks for a key value is caught" \
    bash -c "! python3 '$here/calllog.py' '$WORK/control' >/dev/null"

finish
