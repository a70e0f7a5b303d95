#!/usr/bin/env bash
# Every PKCS#11 call the CLI makes, logged by OpenSC's pkcs11-spy between
# kpsa and SoftHSM2: no key value read, no wrap, no copy, no attribute
# change, every key created sensitive and not extractable. A control run of
# an independent tool that does try to read a key shows the check can fail.
here=$(dirname "$0")
# shellcheck source=tests/lib.sh
. "$here/lib.sh"
KPSA=${KPSA:-build/tools/kpsa}
SPY=$(dirname "$P11KIT_CLIENT")/pkcs11-spy.so

[ -f "$SPY" ] || { echo "1..0 # SKIP no pkcs11-spy.so"; exit 0; }
setup_token
umask 077
openssl rand -hex 32 >"$WORK/k"
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

logged "import" import a@example.com --in "$WORK/k" --tls13-sha384
logged "generate" generate g@example.com --out "$WORK/g"
logged "a refused shared key" import b@example.com --in "$WORK/k"
logged "list" list
logged "show" show a@example.com
logged "check" check a@example.com
logged "delete" delete a@example.com --yes
logged "delete of a generated key" delete g@example.com --yes

"$KPSA" import c@example.com --in "$WORK/k" --allow-shared-key
id=$(printf 'kpsa1:kpsa' | xxd -p)
PKCS11SPY_OUTPUT=$WORK/control pkcs11-tool --module "$SPY" --login \
    --pin 1234 --token-label "$TOKEN_LABEL" --read-object --type secrkey \
    --label c@example.com --id "$id" >/dev/null 2>&1
check "control: a tool that asks for a key value is caught" \
    bash -c "! python3 '$here/calllog.py' '$WORK/control' >/dev/null"

finish
