#!/usr/bin/env bash
# Prepares a token and a key, then runs test_faults (see its header).
here=$(dirname "$0")
# shellcheck source=tests/lib.sh
. "$here/lib.sh"
KPSA=${KPSA:-build/tools/kpsa}
KPSA_PROVIDER=$(realpath "${KPSA_PROVIDER:-build/provider/kpsa.so}")
FAULTMOD=$(realpath "${FAULTMOD:-build/tests/faultmod.so}")
export KPSA_PROVIDER FAULTMOD

setup_token
umask 077
openssl rand -hex 32 >"$WORK/key"
export KPSA_ID=fault@example.com KPSA_FAULT_MODULE=$SOFTHSM_MODULE
"$KPSA" import "$KPSA_ID" --in "$WORK/key" ||
    { echo "Bail out! import"; exit 1; }
KPSA_HANDLE=$("$KPSA" handle "$KPSA_ID")
KPSA_KEY=$(cat "$WORK/key")
export KPSA_HANDLE KPSA_KEY
"${TEST_FAULTS:-build/tests/test_faults}"
status=$?
cleanup
exit $status
