#!/usr/bin/env bash
# Runs the key family's known-answer test on a fresh SoftHSM2 token, or with
# P11KIT=1 on the same token served from another process by p11-kit server.
here=$(dirname "$0")
# shellcheck source=tests/lib.sh
. "$here/lib.sh"

setup_token
[ "${P11KIT:-0}" = 1 ] && start_p11kit_server
"${TEST_FAMILY:-build/tests/test_family}"
status=$?
cleanup
exit $status
