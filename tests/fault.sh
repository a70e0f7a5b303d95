#!/usr/bin/env bash
# Faults injected between kpsa and SoftHSM2 by the test module faultmod:
# an import that fails at any object leaves the token exactly as it was,
# every failure names its CKR_* code, and leftovers of an interrupted write
# are removed by the next import or delete.
here=$(dirname "$0")
# shellcheck source=tests/lib.sh
. "$here/lib.sh"
KPSA=${KPSA:-build/tools/kpsa}
FAULTMOD=${FAULTMOD:-build/tests/faultmod.so}

setup_token
umask 077
export KPSA_FAULT_MODULE=$SOFTHSM_MODULE
openssl rand -hex 32 >"$WORK/k1"
openssl rand -hex 32 >"$WORK/k2"
"$KPSA" import base@example.com --in "$WORK/k1" ||
    { echo "Bail out! import without faults"; exit 1; }
ID=x@example.com

# faulty ARGS...: kpsa through faultmod.
faulty() {
    "$KPSA" --module "$FAULTMOD" "$@"
}

# creates N: how many C_CreateObject calls one import makes.
creates() {
    rm -f "$WORK/count"
    KPSA_FAULT_COUNT_FILE=$WORK/count faulty import "n$1@example.com" \
        "${@:2}" --in "$WORK/k2" >/dev/null 2>&1
    awk '$1 == "C_CreateObject" {print $2}' "$WORK/count"
    "$KPSA" delete "n$1@example.com" --yes >/dev/null 2>&1
}

n_base=$(creates 1)
n_384=$(creates 2 --tls13-sha384)
check "an import writes 10 objects" [ "$n_base" = 10 ]
check "with SHA-384 TLS 1.3 members, 15" [ "$n_384" = 15 ]

before=$(snapshot)
for rv in CKR_DEVICE_MEMORY CKR_DEVICE_REMOVED CKR_SESSION_CLOSED \
    CKR_USER_NOT_LOGGED_IN CKR_GENERAL_ERROR; do
    bad=0
    for k in $(seq "$n_384"); do
        KPSA_FAULT_FUNC=C_CreateObject KPSA_FAULT_AT=$k KPSA_FAULT_RV=$rv \
            run faulty import "$ID" --tls13-sha384 --in "$WORK/k2"
        if [ "$RC" -ne 3 ] || ! grep -q "C_CreateObject failed: $rv\$" \
            "$WORK/err" || [ "$(snapshot)" != "$before" ]; then
            bad=$k
            sed 's/^/# /' "$WORK/err"
            break
        fi
    done
    check "$rv at each of $n_384 objects: status 3, token unchanged" \
        [ "$bad" = 0 ]
done
expect "the error names the object and the CKR_* code" 3 \
    "kpsa: $ID: member tls12-pms-sha256: C_CreateObject failed: CKR_DEVICE_MEMORY" \
    env KPSA_FAULT_FUNC=C_CreateObject KPSA_FAULT_AT=3 \
    KPSA_FAULT_RV=CKR_DEVICE_MEMORY "$KPSA" --module "$FAULTMOD" import "$ID" \
    --in "$WORK/k2"
expect "a failed manifest write is named too" 3 \
    "kpsa: $ID: manifest: C_CreateObject failed: CKR_DEVICE_MEMORY" \
    env KPSA_FAULT_FUNC=C_CreateObject KPSA_FAULT_AT=10 \
    KPSA_FAULT_RV=CKR_DEVICE_MEMORY "$KPSA" --module "$FAULTMOD" import "$ID" \
    --in "$WORK/k2"
expect "after the faults the same import succeeds" 0 "" \
    "$KPSA" import "$ID" --in "$WORK/k2"

# --- a failed rollback leaves orphans that the next write removes -------
"$KPSA" delete "$ID" --yes
before=$(snapshot)
expect "a failed delete of a member reports it" 3 \
    "kpsa: $ID: member kpsa: C_DestroyObject failed: CKR_DEVICE_REMOVED" \
    env KPSA_FAULT_FUNC=C_DestroyObject KPSA_FAULT_AT=2 \
    KPSA_FAULT_RV=CKR_DEVICE_REMOVED sh -c \
    "'$KPSA' import '$ID' --in '$WORK/k2' && \
     '$KPSA' --module '$FAULTMOD' delete '$ID' --yes"
run "$KPSA" list
check "a family without its manifest is not listed" \
    bash -c "! grep -q '^$ID ' '$WORK/out'"
check "its members are still on the token" [ "$(snapshot)" != "$before" ]
expect "the next import removes the leftovers and succeeds" 0 "" \
    "$KPSA" import "$ID" --in "$WORK/k2"
"$KPSA" delete "$ID" --yes
check "after delete the token is as before" [ "$(snapshot)" = "$before" ]
expect "delete of leftovers alone" 0 "" sh -c \
    "'$KPSA' import '$ID' --in '$WORK/k2' && KPSA_FAULT_FUNC=C_DestroyObject \
     KPSA_FAULT_AT=3 '$KPSA' --module '$FAULTMOD' delete '$ID' --yes \
     2>/dev/null; '$KPSA' delete '$ID' --yes"
check "leaves the token as before" [ "$(snapshot)" = "$before" ]
expect "a failed manifest delete keeps the family whole" 3 \
    "kpsa: $ID: manifest: C_DestroyObject failed: CKR_DEVICE_ERROR" \
    sh -c "'$KPSA' import '$ID' --in '$WORK/k2' && KPSA_FAULT_FUNC=C_DestroyObject \
     KPSA_FAULT_AT=1 '$KPSA' --module '$FAULTMOD' delete '$ID' --yes"
run "$KPSA" show "$ID"
check "and it is still whole" grep -qx "whole: yes" "$WORK/out"
"$KPSA" delete "$ID" --yes

# --- other failures: named, no crash, nothing written -------------------
expect "enumeration failure" 3 \
    "kpsa: token '$TOKEN_LABEL': C_FindObjectsInit failed: CKR_DEVICE_REMOVED" \
    env KPSA_FAULT_FUNC=C_FindObjectsInit KPSA_FAULT_RV=CKR_DEVICE_REMOVED \
    "$KPSA" --module "$FAULTMOD" list
expect "random generator failure: no key, no file" 3 \
    "kpsa: $ID: token '$TOKEN_LABEL': C_GenerateRandom failed: CKR_DEVICE_ERROR" \
    env KPSA_FAULT_FUNC=C_GenerateRandom "$KPSA" --module "$FAULTMOD" \
    generate "$ID" --out "$WORK/gen"
check "the key file was removed again" [ ! -e "$WORK/gen" ]
check "and the token is unchanged" [ "$(snapshot)" = "$before" ]
expect "a check that the token cannot compute" 3 \
    "kpsa: base@example.com: token '$TOKEN_LABEL': C_Sign failed: CKR_DEVICE_REMOVED" \
    env KPSA_FAULT_FUNC=C_Sign KPSA_FAULT_RV=CKR_DEVICE_REMOVED \
    "$KPSA" --module "$FAULTMOD" check base@example.com

# --- a rejected PIN is sent once ----------------------------------------
echo 0000 >"$WORK/badpin"
rm -f "$WORK/count"
KPSA_FAULT_COUNT_FILE=$WORK/count run faulty --pin-source \
    "file:$WORK/badpin" import "$ID" --in "$WORK/k2"
check "a wrong PIN fails with status 3" [ "$RC" -eq 3 ]
check "and C_Login was called once" grep -qx "C_Login 1" "$WORK/count"

finish
