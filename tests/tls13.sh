#!/usr/bin/env bash
# Prepares a token with a SHA-256 and a SHA-384 TLS 1.3 family, then runs
# test_tls13 (see its header); with VALGRIND=1 under Valgrind memcheck.
here=$(dirname "$0")
# shellcheck source=tests/lib.sh
. "$here/lib.sh"
KPSA=${KPSA:-build/tools/kpsa}
KPSA_PROVIDER=$(realpath "${KPSA_PROVIDER:-build/provider/kpsa.so}")
export KPSA_PROVIDER

setup_token
umask 077
openssl rand -hex 32 >"$WORK/key256"
openssl rand -hex 48 >"$WORK/key384"
export KPSA_ID256=dev-256@example.com KPSA_ID384=dev-384@example.com
"$KPSA" import "$KPSA_ID256" --in "$WORK/key256" &&
    "$KPSA" import "$KPSA_ID384" --in "$WORK/key384" --tls13-sha384 ||
    { echo "Bail out! import"; exit 1; }
KPSA_KEY256=$(cat "$WORK/key256")
KPSA_KEY384=$(cat "$WORK/key384")
export KPSA_KEY256 KPSA_KEY384
# VALGRIND=1: under memcheck, no error and nothing definitely lost.
vg=()
[ -n "${VALGRIND:-}" ] && vg=(valgrind -q --error-exitcode=99
    --leak-check=full --errors-for-leak-kinds=definite
    --show-leak-kinds=definite)
"${vg[@]}" "${TEST_TLS13:-build/tests/test_tls13}"
status=$?
cleanup
exit $status
