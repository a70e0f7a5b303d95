#!/usr/bin/env bash
# Prepares a token and a key, then runs test_threads (see its header).
here=$(dirname "$0")
# shellcheck source=tests/lib.sh
. "$here/lib.sh"
KPSA=${KPSA:-build/tools/kpsa}

setup_token
umask 077
openssl rand -hex 32 >"$WORK/key"
export KPSA_ID=thread@example.com
"$KPSA" import "$KPSA_ID" --in "$WORK/key" ||
    { echo "Bail out! import"; exit 1; }
KPSA_HANDLE=$("$KPSA" handle "$KPSA_ID")
KPSA_KEY=$(cat "$WORK/key")
export KPSA_HANDLE KPSA_KEY
write_openssl_cnf
"${TEST_THREADS:-build/tests/test_threads}"
status=$?
cleanup
exit $status
