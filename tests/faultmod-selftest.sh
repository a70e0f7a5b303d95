#!/bin/bash
# Self-test of the fault-injection module (tests/faultmod.c): checks that it
# passes calls through untouched, fails the chosen call, rejects bad settings
# and writes its call counts, before the kpsa fault tests rely on it.
# Usage: faultmod-selftest.sh path/to/faultmod.so    (TAP output)

set -u

if [ $# -ne 1 ] || [ ! -f "$1" ]; then
    echo "usage: $0 path/to/faultmod.so" >&2
    exit 2
fi
so=$(realpath "$1")

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Settings from the caller's environment would change every result below.
unset KPSA_FAULT_FUNC KPSA_FAULT_AT KPSA_FAULT_STICKY KPSA_FAULT_RV \
    KPSA_FAULT_COUNT_FILE KPSA_FAULT_MODULE

mkdir "$tmp/tokens"
cat >"$tmp/softhsm2.conf" <<EOF
directories.tokendir = $tmp/tokens
objectstore.backend = file
log.level = ERROR
EOF
export SOFTHSM2_CONF=$tmp/softhsm2.conf

n=0
failed=0
ok() {
    n=$((n + 1))
    echo "ok $n - $1"
}
not_ok() {
    n=$((n + 1))
    failed=$((failed + 1))
    echo "not ok $n - $1"
    sed 's/^/# /' "$tmp/out"
}
# check DESCRIPTION CONDITION...: report whether the condition holds.
check() {
    local desc=$1
    shift
    if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}
p11() {
    pkcs11-tool --module "$so" "$@" >"$tmp/out" 2>&1
}
# failed_with RC PATTERN: the last command failed and said PATTERN.
failed_with() {
    [ "$1" -ne 0 ] && grep -q "$2" "$tmp/out"
}

if ! softhsm2-util --init-token --free --label t --pin 1234 --so-pin 5678 \
    >"$tmp/out" 2>&1; then
    not_ok "softhsm2-util --init-token"
    echo "1..$n"
    exit 1
fi

# (a) pass-through
p11 -L
check "pass-through: pkcs11-tool -L succeeds" test $? -eq 0
check "pass-through: token t is listed" grep -Eq 'token label *: t$' "$tmp/out"

printf 'secret' >"$tmp/data"
p11 --token-label t --login --pin 1234 --write-object "$tmp/data" \
    --type data --label d1
check "pass-through: write data object" test $? -eq 0

# (b) the chosen call fails with the chosen error
KPSA_FAULT_FUNC=C_GetSlotList KPSA_FAULT_AT=1 KPSA_FAULT_RV=CKR_DEVICE_REMOVED \
    p11 -L
rc=$?
check "fault: C_GetSlotList #1 fails -L with CKR_DEVICE_REMOVED" \
    failed_with $rc CKR_DEVICE_REMOVED

# (c) count file
KPSA_FAULT_COUNT_FILE=$tmp/counts p11 -L
check "count: pkcs11-tool -L succeeds" test $? -eq 0
cp "$tmp/counts" "$tmp/out" 2>/dev/null || echo "(no count file)" >"$tmp/out"
check "count: file written" test -s "$tmp/counts"
check "count: file has C_Initialize 1" grep -sqx 'C_Initialize 1' "$tmp/counts"
check "count: file has C_Finalize 1" grep -sqx 'C_Finalize 1' "$tmp/counts"
check "count: file counts C_GetSlotList" \
    grep -sEqx 'C_GetSlotList [1-9][0-9]*' "$tmp/counts"
check "count: every line is NAME COUNT" \
    test -z "$(grep -sEvx 'C_[A-Za-z]+ [1-9][0-9]*' "$tmp/counts")"

# A call never reached must not fail, so a loop up to the count is enough.
slotlist=$(awk '$1 == "C_GetSlotList" { print $2 }' "$tmp/counts" 2>/dev/null)
KPSA_FAULT_FUNC=C_GetSlotList KPSA_FAULT_AT=$((slotlist + 1)) p11 -L
check "fault: call past the last one changes nothing" test $? -eq 0

# The use the module is written for: a failed import leaves no object.
rm -f "$tmp/counts"
KPSA_FAULT_COUNT_FILE=$tmp/counts p11 --token-label t --login --pin 1234 \
    --write-object "$tmp/data" --type data --label d2
check "count: C_CreateObject counted once" \
    grep -sqx 'C_CreateObject 1' "$tmp/counts"
KPSA_FAULT_FUNC=C_CreateObject KPSA_FAULT_RV=CKR_DEVICE_MEMORY \
    p11 --token-label t --login --pin 1234 --write-object "$tmp/data" \
    --type data --label d3
rc=$?
check "fault: C_CreateObject #1 fails --write-object with CKR_DEVICE_MEMORY" \
    failed_with $rc CKR_DEVICE_MEMORY
p11 --token-label t --login --pin 1234 --list-objects --type data
check "pass-through: object d2 of the counting run exists" \
    grep -q "label: *'d2'" "$tmp/out"
check "fault: failed object d3 was not created" \
    test -z "$(grep "label: *'d3'" "$tmp/out")"

# pkcs11-tool shows an attribute it failed to read as <empty> and goes on,
# so one failed read hides one label, a sticky fault hides them all.
KPSA_FAULT_FUNC=C_GetAttributeValue KPSA_FAULT_AT=1 \
    p11 --token-label t --login --pin 1234 --list-objects --type data
check "fault: non-sticky fault fails only one call" \
    grep -q "label: *'d" "$tmp/out"
KPSA_FAULT_FUNC=C_GetAttributeValue KPSA_FAULT_AT=1 KPSA_FAULT_STICKY=1 \
    p11 --token-label t --login --pin 1234 --list-objects --type data
check "fault: sticky fault fails every later call" \
    test -z "$(grep "label: *'" "$tmp/out")"

# A failed login must reach the caller as the injected error.
KPSA_FAULT_FUNC=C_Login KPSA_FAULT_STICKY=1 KPSA_FAULT_RV=CKR_PIN_INCORRECT \
    p11 --token-label t --login --pin 1234 --list-objects
rc=$?
check "fault: C_Login fails with CKR_PIN_INCORRECT" \
    failed_with $rc CKR_PIN_INCORRECT

# A typo must not silently turn into a pass-through run.
KPSA_FAULT_FUNC=C_CreatObject p11 -L
rc=$?
check "config: unknown KPSA_FAULT_FUNC is refused" \
    failed_with $rc "faultmod: bad KPSA_FAULT_FUNC"
KPSA_FAULT_FUNC=C_GetSlotList KPSA_FAULT_RV=CKR_NO_SUCH_THING p11 -L
rc=$?
check "config: unknown KPSA_FAULT_RV is refused" \
    failed_with $rc "faultmod: bad KPSA_FAULT_RV"

echo "1..$n"
[ "$failed" -eq 0 ]
