#!/usr/bin/env bash
# Kpsa stays in the token: after many handshakes, the memory of a TLS
# server using kpsa holds neither Kpsa nor any PSK-constant secret
# (KEY-SCHEDULE.md section 1, docs/key-format.md). The token is SoftHSM2
# served by p11-kit server from another process, so the servers load only
# p11-kit-client.so and neither SoftHSM2 nor its object files are in them.
#
# Servers: an unmodified openssl s_server with kpsa (a handle for -psk, or
# a TLS 1.3 session whose master key is the handle for -psk_session), one
# run per protocol and mode, and kpsa serve (TLS 1.2, TLS 1.3, DTLS 1.2).
# Clients: openssl s_client in processes of their own, holding the raw key,
# without kpsa. Each server's last connection is still open when its whole
# address space is read from /proc/PID/mem (memscan.py) and searched for
# Kpsa, its hex text, the plain-PSK premaster (and its hash), the TLS 1.3
# early secret, binder key, binder finished key, "derived" secret, psk_ke
# handshake secret, its "derived" secret and master secret, for SHA-256 and
# SHA-384, and for each of these used as an HMAC key, the ipad and opad
# blocks and the hash states an HMAC context keeps.
#
# Control runs give the same s_server the raw key without kpsa: the search
# must find Kpsa there (and the early secret or binder key for TLS 1.3), or
# this test could not fail. Python's values are checked against OpenSSL's
# HKDF and TLS13-KDF and against the known answers of docs/key-format.md.
here=$(dirname "$0")
# shellcheck source=tests/lib.sh
. "$here/lib.sh"
KPSA=${KPSA:-build/tools/kpsa}
# openssl.cnf resolves a relative module path against its modules directory.
KPSA_PROVIDER=$(realpath "${KPSA_PROVIDER:-build/provider/kpsa.so}")
export KPSA_PROVIDER
MEMSCAN=$here/memscan.py
ROUNDS=${MEMSCAN_ROUNDS:-20}
CONTROL_ROUNDS=5

if provider_instrumented; then
    echo "1..0 # SKIP the provider is built with sanitizers: openssl cannot load it"
    exit 0
fi
# Reading another process's memory needs ptrace rights over it.
sleep 30 &
probe=$!
timeout 30 python3 "$MEMSCAN" scan "$probe" >/dev/null 2>&1
probe_rc=$?
kill "$probe" 2>/dev/null
wait "$probe" 2>/dev/null
if [ "$probe_rc" -gt 1 ]; then
    echo "1..0 # SKIP cannot read /proc/PID/mem of another process (no ptrace rights)"
    exit 0
fi

SRV_T='' SRV_PID='' CL_T=''
# stop_server: the server by its own PID, then its timeout wrapper.
stop_server() {
    exec 7>&- 2>/dev/null
    [ -n "$SRV_PID" ] && kill "$SRV_PID" 2>/dev/null
    [ -n "$SRV_T" ] && wait "$SRV_T" 2>/dev/null
    SRV_T='' SRV_PID=''
}
release() {
    exec 6>&- 2>/dev/null
    [ -n "$CL_T" ] && wait "$CL_T" 2>/dev/null
    CL_T=
}
trap 'release; stop_server; cleanup' EXIT

setup_token
umask 077
start_p11kit_server
ID=dev-01@example.com
ID48=dev-48@example.com
openssl rand -hex 32 >"$WORK/key"
openssl rand -hex 48 >"$WORK/key48"
KEY=$(cat "$WORK/key")
expect "import a 32-byte key" 0 "" "$KPSA" import "$ID" --in "$WORK/key"
expect "import a 48-byte key with --tls13-sha384" 0 "" \
    "$KPSA" import "$ID48" --in "$WORK/key48" --tls13-sha384
HANDLE=$("$KPSA" handle "$ID")
HANDLE48=$("$KPSA" handle "$ID48")
write_openssl_cnf
KPSA_CNF=$OPENSSL_CONF_KPSA
PLAIN_CNF=$WORK/plain.cnf
printf 'openssl_conf = openssl_init\n[openssl_init]\n' >"$PLAIN_CNF"
# TLS 1.3 sessions for -psk_session (s_client and s_server take -psk as
# SHA-256 only): TLS_AES_256_GCM_SHA384, master key the raw 48-byte key
# for the clients and the controls, the handle for s_server with kpsa.
python3 "$MEMSCAN" session "$(cat "$WORK/key48")" 1302 >"$WORK/raw48.pem"
python3 "$MEMSCAN" session "$HANDLE48" 1302 >"$WORK/handle48.pem"
check "the SHA-384 sessions read back with their master keys" bash -c "
    OPENSSL_CONF=$PLAIN_CNF openssl sess_id -in $WORK/raw48.pem -noout -text |
        grep -qi 'Resumption PSK: $(cat "$WORK/key48")' &&
    OPENSSL_CONF=$PLAIN_CNF openssl sess_id -in $WORK/handle48.pem -noout -text |
        grep -qi 'Resumption PSK: $HANDLE48'"

# --- the values searched for are the right ones ----------------------------
run python3 "$MEMSCAN" selftest
check "memscan.py: SHA-2 states against hashlib, docs/key-format.md known answers" \
    grep -qx 'selftest: ok' "$WORK/out"

# kdf ARGS...: openssl kdf without kpsa; lower-case hex without colons.
kdf() {
    OPENSSL_CONF=$PLAIN_CNF openssl kdf "$@" | tr -d ':\n' | tr A-F a-f
}
# value LABEL NAME: what memscan.py searches for.
value() {
    python3 "$MEMSCAN" secrets "$(cat "$WORK/$1")" | awk -v n="$2" '$1 == n {print $2}'
}
crosscheck() {
    local keyfile=$1 h=$2 hlen=$3 md=$4 k es bk ds hs e zero
    k=$(cat "$WORK/$keyfile")
    zero=$(printf "%0$((2 * hlen))d" 0)
    e=$(printf "" | OPENSSL_CONF=$PLAIN_CNF openssl dgst "-$h" -r | cut -d" " -f1)
    es=$(kdf -keylen "$hlen" -kdfopt "digest:$md" -kdfopt mode:EXTRACT_ONLY \
        -kdfopt "hexkey:$k" -kdfopt "hexsalt:$zero" HKDF)
    bk=$(kdf -keylen "$hlen" -kdfopt "digest:$md" -kdfopt mode:EXPAND_ONLY \
        -kdfopt "hexkey:$es" -kdfopt 'prefix:tls13 ' \
        -kdfopt 'label:ext binder' -kdfopt "hexdata:$e" TLS13-KDF)
    ds=$(kdf -keylen "$hlen" -kdfopt "digest:$md" -kdfopt mode:EXPAND_ONLY \
        -kdfopt "hexkey:$es" -kdfopt 'prefix:tls13 ' -kdfopt 'label:derived' \
        -kdfopt "hexdata:$e" TLS13-KDF)
    # TLS13-KDF's extract step derives its salt ("derived") itself.
    hs=$(kdf -keylen "$hlen" -kdfopt "digest:$md" -kdfopt mode:EXTRACT_ONLY \
        -kdfopt "hexsalt:$es" -kdfopt 'prefix:tls13 ' -kdfopt 'label:derived' \
        -kdfopt "hexkey:$zero" TLS13-KDF)
    [ -n "$es" ] &&
        [ "$(kdf -keylen "$hlen" -kdfopt "digest:$md" -kdfopt mode:EXTRACT_ONLY \
            -kdfopt "hexkey:$k" TLS13-KDF)" = "$es" ] &&
        [ "$(value "$keyfile" "tls13-$h-early")" = "$es" ] &&
        [ "$(value "$keyfile" "tls13-$h-binder-key")" = "$bk" ] &&
        [ "$(value "$keyfile" "tls13-$h-binder")" = "$(kdf -keylen "$hlen" \
            -kdfopt "digest:$md" -kdfopt mode:EXPAND_ONLY -kdfopt "hexkey:$bk" \
            -kdfopt 'prefix:tls13 ' -kdfopt 'label:finished' TLS13-KDF)" ] &&
        [ "$(value "$keyfile" "tls13-$h-derived")" = "$ds" ] &&
        [ "$(value "$keyfile" "tls13-$h-hs-ke")" = "$hs" ] &&
        [ "$(value "$keyfile" "tls13-$h-ms-ke")" = "$(kdf -keylen "$hlen" \
            -kdfopt "digest:$md" -kdfopt mode:EXTRACT_ONLY -kdfopt "hexsalt:$hs" \
            -kdfopt 'prefix:tls13 ' -kdfopt 'label:derived' \
            -kdfopt "hexkey:$zero" TLS13-KDF)" ] &&
        [ "$(value "$keyfile" tls12-pms)" = "$(printf '%04x%0*d%04x%s' \
            $((${#k} / 2)) "${#k}" 0 $((${#k} / 2)) "$k")" ]
}
check "32-byte key: TLS 1.3 SHA-256 secrets and premaster equal OpenSSL's HKDF/TLS13-KDF" \
    crosscheck key sha256 32 SHA2-256
check "48-byte key: TLS 1.3 SHA-384 secrets and premaster equal OpenSSL's HKDF/TLS13-KDF" \
    crosscheck key48 sha384 48 SHA2-384

# --- servers, clients and the scan --------------------------------------

# child_of PID: the process a timeout wrapper started.
child_of() {
    local c=
    for _ in $(seq 100); do
        c=$(cat "/proc/$1/task/$1/children" 2>/dev/null)
        [ -n "$c" ] && break
        sleep 0.02
    done
    echo "${c%% *}"
}

# s_serve CONF UDP ARGS...: openssl s_server on $PORT, what clients send
# in $WORK/srv.out; its PID in SRV_PID.
s_serve() {
    local conf=$1 flag=-ltn
    [ "$2" = udp ] && flag=-lun
    shift 2
    PORT=$(free_port)
    SERVED=$WORK/srv.out
    rm -f "$WORK/srv.in" "$WORK/srv.out"
    mkfifo "$WORK/srv.in"
    OPENSSL_CONF=$conf timeout 120 openssl s_server -accept "127.0.0.1:$PORT" \
        -nocert -quiet -naccept 1000 "$@" <"$WORK/srv.in" >"$WORK/srv.out" \
        2>"$WORK/srv.err" &
    SRV_T=$!
    exec 7>"$WORK/srv.in"
    SRV_PID=$(child_of "$SRV_T")
    for _ in $(seq 100); do
        ss -H "$flag" "sport = :$PORT" | grep -q . && return 0
        sleep 0.05
    done
    return 1
}

# kpsa_serve ARGS...: kpsa serve on $PORT; bindings in $WORK/srv.out.
kpsa_serve() {
    PORT=$(free_port)
    SERVED=$WORK/srv.out
    rm -f "$WORK/srv.out" "$WORK/srv.err"
    exec 7>/dev/null
    timeout 120 "$KPSA" serve --listen "127.0.0.1:$PORT" "$@" \
        >"$WORK/srv.out" 2>"$WORK/srv.err" &
    SRV_T=$!
    SRV_PID=$(child_of "$SRV_T")
    for _ in $(seq 100); do
        grep -q '^kpsa: listening' "$WORK/srv.err" 2>/dev/null && return 0
        kill -0 "$SRV_T" 2>/dev/null || break
        sleep 0.05
    done
    return 1
}

# arrived TEXT COUNT: $SERVED holds COUNT lines with TEXT within 2 s.
arrived() {
    for _ in $(seq 40); do
        [ "$(grep -cF -- "$1" "$SERVED")" -ge "$2" ] && return 0
        sleep 0.05
    done
    return 1
}

# handshake KIND WANT ARGS...: one s_client with the raw key; passes when
# the server saw the connection (KIND s_server: the line sent; kpsa: one
# more binding line) and the client's summary has every pattern of WANT
# ("|"-separated; a leading ! means absent).
C_N=0
handshake() {
    local kind=$1 want=$2 line before
    shift 2
    C_N=$((C_N + 1))
    line="memscan-$C_N-$$"
    before=$(grep -c 'credential-id=' "$SERVED" 2>/dev/null)
    echo "$line" | OPENSSL_CONF=$PLAIN_CNF timeout 10 openssl s_client \
        -brief -connect "127.0.0.1:$PORT" "$@" >"$WORK/cl.out" 2>&1
    if [ "$kind" = kpsa ]; then
        arrived 'credential-id=' $((before + 1)) || return 1
    else
        arrived "$line" 1 || return 1
    fi
    want_in "$want" "$WORK/cl.out"
}

# want_in WANT FILE: FILE has every pattern of WANT.
want_in() {
    local w ws
    IFS='|' read -ra ws <<<"$1"
    for w in "${ws[@]}"; do
        case $w in
        !*) grep -q -- "${w#!}" "$2" && return 1 ;;
        *) grep -q -- "$w" "$2" || return 1 ;;
        esac
    done
    return 0
}

# hold KIND WANT ARGS...: like handshake, but the connection stays open
# until release.
hold() {
    local kind=$1 want=$2 line before
    shift 2
    C_N=$((C_N + 1))
    line="memscan-held-$C_N-$$"
    HELD_LINE=$line
    before=$(grep -c 'credential-id=' "$SERVED" 2>/dev/null)
    rm -f "$WORK/cl.in"
    mkfifo "$WORK/cl.in"
    OPENSSL_CONF=$PLAIN_CNF timeout 30 openssl s_client -brief \
        -connect "127.0.0.1:$PORT" "$@" <"$WORK/cl.in" >"$WORK/cl.out" 2>&1 &
    CL_T=$!
    exec 6>"$WORK/cl.in"
    echo "$line" >&6
    if [ "$kind" = kpsa ]; then
        arrived 'credential-id=' $((before + 1)) || return 1
    else
        arrived "$line" 1 || return 1
    fi
    want_in "$want" "$WORK/cl.out"
}

hex() {
    printf '%s' "$1" | od -An -tx1 | tr -d ' \n'
}

# scan_server: searches the server's whole memory for both keys' values;
# the hits in $WORK/scan.out. Markers: the line the open connection's
# client sent (so the scan did read the connection's memory), the handles
# and the KpsaIds.
scan_server() {
    cp "/proc/$SRV_PID/maps" "$WORK/maps" 2>/dev/null || : >"$WORK/maps"
    timeout 60 python3 "$MEMSCAN" scan "$SRV_PID" "k32=$WORK/key" \
        "k48=$WORK/key48" "+line=$(hex "$HELD_LINE")" "+handle=$HANDLE" \
        "+handle48=$HANDLE48" "+kpsa-id=$(hex "$ID")" \
        "+kpsa-id48=$(hex "$ID48")" >"$WORK/scan.out" 2>&1
    SCAN_RC=$?
    read -r _ SCAN_BYTES SCAN_REGIONS SCAN_UNREADABLE < <(grep '^scanned ' "$WORK/scan.out")
    SCANNED_TOTAL=$((SCANNED_TOTAL + ${SCAN_BYTES:-0}))
    SCANS=$((SCANS + 1))
}
SCANNED_TOTAL=0
SCANS=0
SUMMARY=()

# rounds NAME KIND WANT N ARGS...: N handshakes, the last held open.
rounds() {
    local name=$1 kind=$2 want=$3 n=$4 good=0
    shift 4
    for _ in $(seq $((n - 1))); do
        handshake "$kind" "$want" "$@" && good=$((good + 1))
    done
    hold "$kind" "$want" "$@" && good=$((good + 1))
    if [ "$good" -eq "$n" ]; then
        ok "$name: $good of $n handshakes"
    else
        not_ok "$name: $good of $n handshakes"
        sed 's/^/# client: /' "$WORK/cl.out" | tail -5
        sed 's/^/# server: /' "$WORK/srv.err" | tail -5
    fi
    GOOD=$good
}

# marks: where the markers were found, as a comment.
marks() {
    echo "# markers: $(awk '$1 == "mark" {n[$2]++; if (!($2 in w)) w[$2] = $7}
        END {for (k in n) printf "%s x%d (first in %s) ", k, n[k], w[k]}' \
        "$WORK/scan.out")"
}

# clean NAME: the scan ran and found nothing; the open connection's data
# is in what it read, so it did see the memory a handshake uses.
clean() {
    local name=$1
    if [ "$SCAN_RC" -le 1 ] && [ "${SCAN_BYTES:-0}" -gt 0 ] &&
        grep -q '^mark line ' "$WORK/scan.out"; then
        ok "$name: memory read, $SCAN_BYTES bytes in $SCAN_REGIONS regions ($SCAN_UNREADABLE unreadable); the open connection's data found in it"
        marks
    else
        not_ok "$name: memory read, and the open connection's data found in it"
        sed 's/^/# /' "$WORK/scan.out" | head -20
    fi
    check "$name: the server loaded p11-kit-client.so, not SoftHSM2" \
        bash -c "grep -q '/p11-kit-client.so\$' '$WORK/maps' &&
            ! grep -qi softhsm '$WORK/maps'"
    if [ "$SCAN_RC" = 0 ]; then
        ok "$name: neither Kpsa nor a PSK-constant secret in the server's memory"
    else
        not_ok "$name: neither Kpsa nor a PSK-constant secret in the server's memory"
        grep '^hit ' "$WORK/scan.out" | sed 's/^/# /' | head -40
        echo "# $(grep -c '^hit ' "$WORK/scan.out") hits"
    fi
    SUMMARY+=("$name: $GOOD handshakes, $SCAN_BYTES bytes, $(grep -c '^hit ' "$WORK/scan.out") hits")
}

# found PATTERN...: the control scan found at least one of these values.
found() {
    local p
    for p in "$@"; do
        grep -q "^hit $p " "$WORK/scan.out" && return 0
    done
    return 1
}

control_report() {
    local name=$1
    echo "# control $name: $(grep '^hit ' "$WORK/scan.out" | cut -d' ' -f2 |
        sort | uniq -c | awk '{printf "%s%s x%s", sep, $2, $1; sep=", "}')"
    grep '^hit ' "$WORK/scan.out" | grep -v '@16 ' | head -4 | sed 's/^/#   /'
    SUMMARY+=("control $name: $GOOD handshakes, $SCAN_BYTES bytes, $(grep -c '^hit ' "$WORK/scan.out") hits")
}

# mode NAME UDP WANT SERVER-ARGS -- CLIENT-ARGS: s_server with kpsa for
# $ROUNDS handshakes and the scan, then the control (the raw key, no kpsa).
# In SERVER-ARGS, @PSK@ stands for the handle or the raw key, @SESS@ for
# the session file of either.
mode() {
    local name=$1 udp=$2 want=$3 a sargs=() cargs=() kargs=() rargs=() ctl k
    shift 3
    while [ "$1" != -- ]; do sargs+=("$1"); shift; done
    shift
    cargs=("$@")
    for a in "${sargs[@]}"; do
        case $a in
        @PSK@) kargs+=("$HANDLE") rargs+=("$KEY") ;;
        @SESS@) kargs+=("$WORK/handle48.pem") rargs+=("$WORK/raw48.pem") ;;
        *) kargs+=("$a") rargs+=("$a") ;;
        esac
    done
    if s_serve "$KPSA_CNF" "$udp" "${kargs[@]}"; then
        rounds "s_server with kpsa, $name" s_server "$want" "$ROUNDS" "${cargs[@]}"
        scan_server
        release
        stop_server
        clean "s_server with kpsa, $name"
    else
        not_ok "s_server with kpsa, $name: listens"
        sed 's/^/# /' "$WORK/srv.err" | tail -5
        stop_server
    fi
    s_serve "$PLAIN_CNF" "$udp" "${rargs[@]}" ||
        not_ok "control $name: s_server listens"
    rounds "control $name (raw key, no kpsa)" s_server "$want" \
        "$CONTROL_ROUNDS" "${cargs[@]}"
    scan_server
    release
    stop_server
    control_report "$name"
    case $name in
    *TLS\ 1.3*SHA-384*) ctl='k48:tls13-sha384-early k48:tls13-sha384-binder-key' k=k48 ;;
    *TLS\ 1.3*) ctl='k32:tls13-sha256-early k32:tls13-sha256-binder-key' k=k32 ;;
    *) ctl='' k=k32 ;;
    esac
    check "control $name: the scan finds Kpsa in the server's memory" \
        found "$k:kpsa" "$k:kpsa@16" "$k:kpsa-hex" "$k:kpsa-HEX"
    # shellcheck disable=SC2086
    [ -n "$ctl" ] && check "control $name: the scan finds the early secret or the binder key" \
        found $ctl
}

C=(-psk "$KEY" -psk_identity "$ID")
C48=(-psk_session "$WORK/raw48.pem" -psk_identity "$ID48")
DHE='Server Temp Key'
KE='!Temp Key'
mode "TLS 1.2 PSK-AES128-CBC-SHA256" tcp \
    "Protocol version: TLSv1.2|Ciphersuite: PSK-AES128-CBC-SHA256" \
    -psk @PSK@ -psk_identity "$ID" -tls1_2 -cipher PSK-AES128-CBC-SHA256 -- \
    "${C[@]}" -tls1_2 -cipher PSK-AES128-CBC-SHA256
mode "TLS 1.2 PSK-AES256-GCM-SHA384" tcp \
    "Protocol version: TLSv1.2|Ciphersuite: PSK-AES256-GCM-SHA384" \
    -psk @PSK@ -psk_identity "$ID" -tls1_2 -cipher PSK-AES256-GCM-SHA384 -- \
    "${C[@]}" -tls1_2 -cipher PSK-AES256-GCM-SHA384
mode "TLS 1.2 ECDHE-PSK-AES128-CBC-SHA256" tcp \
    "Protocol version: TLSv1.2|Ciphersuite: ECDHE-PSK-AES128-CBC-SHA256|$DHE" \
    -psk @PSK@ -psk_identity "$ID" -tls1_2 \
    -cipher ECDHE-PSK-AES128-CBC-SHA256 -- \
    "${C[@]}" -tls1_2 -cipher ECDHE-PSK-AES128-CBC-SHA256
mode "DTLS 1.2 PSK-AES128-CCM8" udp \
    "Protocol version: DTLSv1.2|Ciphersuite: PSK-AES128-CCM8" \
    -psk @PSK@ -psk_identity "$ID" -dtls1_2 -cipher PSK-AES128-CCM8 -- \
    "${C[@]}" -dtls1_2 -cipher PSK-AES128-CCM8
mode "TLS 1.3 SHA-256 psk_dhe_ke" tcp \
    "Protocol version: TLSv1.3|Ciphersuite: TLS_AES_128_GCM_SHA256|$DHE" \
    -psk @PSK@ -psk_identity "$ID" -tls1_3 \
    -ciphersuites TLS_AES_128_GCM_SHA256 -- \
    "${C[@]}" -tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256
mode "TLS 1.3 SHA-256 psk_ke" tcp \
    "Protocol version: TLSv1.3|Ciphersuite: TLS_AES_128_GCM_SHA256|$KE" \
    -psk @PSK@ -psk_identity "$ID" -tls1_3 \
    -ciphersuites TLS_AES_128_GCM_SHA256 -allow_no_dhe_kex -groups X448 -- \
    "${C[@]}" -tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256 \
    -allow_no_dhe_kex -groups P-256
mode "TLS 1.3 SHA-384 psk_dhe_ke" tcp \
    "Protocol version: TLSv1.3|Ciphersuite: TLS_AES_256_GCM_SHA384|$DHE" \
    -psk_session @SESS@ -psk_identity "$ID48" -tls1_3 \
    -ciphersuites TLS_AES_256_GCM_SHA384 -- \
    "${C48[@]}" -tls1_3 -ciphersuites TLS_AES_256_GCM_SHA384
mode "TLS 1.3 SHA-384 psk_ke" tcp \
    "Protocol version: TLSv1.3|Ciphersuite: TLS_AES_256_GCM_SHA384|$KE" \
    -psk_session @SESS@ -psk_identity "$ID48" -tls1_3 \
    -ciphersuites TLS_AES_256_GCM_SHA384 -allow_no_dhe_kex -groups X448 -- \
    "${C48[@]}" -tls1_3 -ciphersuites TLS_AES_256_GCM_SHA384 \
    -allow_no_dhe_kex -groups P-256

# --- kpsa serve: a process for TLS 1.2, one for TLS 1.3, one for DTLS ------
# kpsa serve offers no ECDHE-PSK suite and no psk_ke.
export KPSA_PROVIDER
kserve() {
    local name=$1
    shift
    if kpsa_serve "$@"; then
        return 0
    fi
    not_ok "$name: listens"
    sed 's/^/# /' "$WORK/srv.err" | tail -5
    stop_server
    return 1
}
S=(-servername in-cse.example.net)
if kserve "kpsa serve (TLS 1.2)"; then
    rounds "kpsa serve, TLS 1.2 PSK-AES128-CBC-SHA256" kpsa \
        "Protocol version: TLSv1.2|Ciphersuite: PSK-AES128-CBC-SHA256" \
        "$ROUNDS" "${C[@]}" "${S[@]}" -tls1_2 -cipher PSK-AES128-CBC-SHA256
    release
    n1=$GOOD
    rounds "kpsa serve, TLS 1.2 PSK-AES256-GCM-SHA384" kpsa \
        "Protocol version: TLSv1.2|Ciphersuite: PSK-AES256-GCM-SHA384" \
        "$ROUNDS" "${C[@]}" "${S[@]}" -tls1_2 -cipher PSK-AES256-GCM-SHA384
    GOOD=$((n1 + GOOD))
    scan_server
    release
    stop_server
    clean "kpsa serve, TLS 1.2 (SHA-256 and SHA-384 PRFs)"
fi
if kserve "kpsa serve --tls1.3" --tls1.3; then
    rounds "kpsa serve --tls1.3, TLS 1.3 SHA-256 psk_dhe_ke" kpsa \
        "Protocol version: TLSv1.3|Ciphersuite: TLS_AES_128_GCM_SHA256|$DHE" \
        "$ROUNDS" "${C[@]}" "${S[@]}" -tls1_3 \
        -ciphersuites TLS_AES_128_GCM_SHA256
    release
    n1=$GOOD
    rounds "kpsa serve --tls1.3, TLS 1.3 SHA-384 psk_dhe_ke" kpsa \
        "Protocol version: TLSv1.3|Ciphersuite: TLS_AES_256_GCM_SHA384|$DHE" \
        "$ROUNDS" "${C48[@]}" "${S[@]}" -tls1_3 \
        -ciphersuites TLS_AES_256_GCM_SHA384
    GOOD=$((n1 + GOOD))
    scan_server
    release
    stop_server
    clean "kpsa serve --tls1.3, TLS 1.3 (SHA-256 and SHA-384)"
fi
if kserve "kpsa serve --dtls" --dtls; then
    rounds "kpsa serve --dtls, DTLS 1.2 PSK-AES128-CCM8" kpsa \
        "Protocol version: DTLSv1.2|Ciphersuite: PSK-AES128-CCM8" \
        "$ROUNDS" "${C[@]}" "${S[@]}" -dtls1_2 -cipher PSK-AES128-CCM8
    scan_server
    release
    stop_server
    clean "kpsa serve --dtls, DTLS 1.2"
fi

for line in "${SUMMARY[@]}"; do
    echo "# $line"
done
echo "# $SCANS scans, $SCANNED_TOTAL bytes in all"
finish
