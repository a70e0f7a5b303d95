#!/usr/bin/env bash
# Valgrind memcheck of the CLI on a real token: import, generate, list,
# show, check and delete, and refusals on their error paths. No error and
# nothing definitely lost.
here=$(dirname "$0")
# shellcheck source=tests/lib.sh
. "$here/lib.sh"
KPSA=${KPSA:-build/tools/kpsa}

command -v valgrind >/dev/null || { echo "1..0 # SKIP no valgrind"; exit 0; }
setup_token
umask 077
openssl rand -hex 32 >"$WORK/k"
echo 0000 >"$WORK/badpin"

# memcheck DESC STATUS ARGS...: kpsa exits with STATUS, valgrind finds
# nothing (its own exit status 99 would show an error or a leak).
memcheck() {
    local desc=$1 status=$2
    shift 2
    valgrind -q --error-exitcode=99 --leak-check=full \
        --errors-for-leak-kinds=definite --show-leak-kinds=definite \
        --log-file="$WORK/vg.log" "$KPSA" "$@" >/dev/null 2>"$WORK/err"
    local rc=$?
    if [ "$rc" -eq "$status" ] && [ ! -s "$WORK/vg.log" ]; then
        ok "memcheck: $desc"
    else
        not_ok "memcheck: $desc (status $rc, want $status)"
        sed 's/^/# /' "$WORK/vg.log" | head -40
    fi
}

memcheck "import" 0 import vg@example.com --in "$WORK/k" --tls13-sha384
memcheck "generate" 0 generate gen@example.com --out "$WORK/gen"
memcheck "list" 0 list
memcheck "list --json" 0 list --json
memcheck "show" 0 show vg@example.com
memcheck "check" 0 check vg@example.com
memcheck "duplicate refused" 1 import vg@example.com --in "$WORK/k"
memcheck "shared key refused" 1 import other@example.com --in "$WORK/k"
memcheck "bad key input refused" 1 import bad@example.com --in /dev/null
memcheck "bad KpsaId refused" 1 import bad --in "$WORK/k"
memcheck "wrong PIN" 3 --pin-source "file:$WORK/badpin" list
memcheck "delete" 0 delete vg@example.com --yes
memcheck "delete unknown" 1 delete vg@example.com --yes
memcheck "validate" 0 validate a@example.com
memcheck "usage error" 2 list --yes
if [ -n "${FAULTMOD:-}" ]; then
    export KPSA_FAULT_MODULE=$SOFTHSM_MODULE
    KPSA_FAULT_FUNC=C_CreateObject KPSA_FAULT_AT=4 \
        memcheck "import failing at the 4th object" 3 --module "$FAULTMOD" \
        import f@example.com --in "$WORK/k" --allow-shared-key
fi

finish
