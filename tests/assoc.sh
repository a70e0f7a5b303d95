#!/usr/bin/env bash
# TS-0003 8.2.2.1 associations with kpsa serve and kpsa connect, each end
# on a SoftHSM2 token of its own: what each side binds the connection to
# (IdB; the Credential-ID and the entity of the operator's map), peers that
# are no kpsa (openssl s_client with a handle, gnutls-cli with the raw key),
# the unknown_psk_identity alert, the map's errors and reload, the second
# association with roles reversed (SA2), and clean stops.
here=$(dirname "$0")
# shellcheck source=tests/lib.sh
. "$here/lib.sh"
KPSA=${KPSA:-build/tools/kpsa}
KPSA_PROVIDER=$(realpath "${KPSA_PROVIDER:-build/provider/kpsa.so}")
export KPSA_PROVIDER

setup_token
umask 077
# The device's own token, beside the server's.
softhsm2-util --init-token --free --label dev --so-pin 5678 --pin 1234 \
    >/dev/null || { echo "Bail out! softhsm2-util"; exit 1; }
SRV_TOKEN=$KPSA_TOKEN
DEV_TOKEN="pkcs11:token=dev"
ID=dev-01@example.com
ID2=dev-02@example.com
openssl rand -hex 32 >"$WORK/key"
openssl rand -hex 32 >"$WORK/key2"
for t in "$SRV_TOKEN" "$DEV_TOKEN"; do
    KPSA_TOKEN=$t "$KPSA" import "$ID" --in "$WORK/key" &&
        KPSA_TOKEN=$t "$KPSA" import "$ID2" --in "$WORK/key2" ||
        { echo "Bail out! import"; exit 1; }
done
HANDLE=$("$KPSA" handle "$ID")
printf '# the server operator map\n12-%s AE Cdev-01   # a metering AE\n' \
    "$ID" >"$WORK/map"

SERVE_PID=
# serve TOKEN ARGS...: kpsa serve on a free port ($PORT) until stop_serve;
# stdout in $WORK/serve.out, stderr in $WORK/serve.err.
serve() {
    local token=$1
    shift
    PORT=$(free_port)
    # A fresh log, so that the wait below reads this server's lines only.
    rm -f "$WORK/serve.out" "$WORK/serve.err"
    KPSA_TOKEN=$token KPSA_DEBUG=1 "$KPSA" serve \
        --listen "127.0.0.1:$PORT" "$@" >"$WORK/serve.out" \
        2>"$WORK/serve.err" &
    SERVE_PID=$!
    for _ in $(seq 100); do
        grep -qs '^kpsa: listening' "$WORK/serve.err" && return 0
        kill -0 "$SERVE_PID" 2>/dev/null || break
        sleep 0.05
    done
    return 1
}

stop_serve() {
    [ -n "$SERVE_PID" ] || return 0
    kill "$SERVE_PID" 2>/dev/null
    wait "$SERVE_PID" 2>/dev/null
    SERVE_RC=$?
    SERVE_PID=
}
trap 'stop_serve; cleanup' EXIT

# connect TOKEN LINE ARGS...: kpsa connect sending LINE; output in
# $WORK/conn.out and conn.err, status in RC.
connect() {
    local token=$1 line=$2
    shift 2
    echo "$line" | KPSA_TOKEN=$token timeout 60 "$KPSA" connect \
        "127.0.0.1:$PORT" "$@" >"$WORK/conn.out" 2>"$WORK/conn.err"
    RC=$?
}

# served TEXT: the server printed TEXT within 2 s.
served() {
    for _ in $(seq 40); do
        grep -qF -- "$1" "$WORK/serve.out" && return 0
        sleep 0.05
    done
    return 1
}

diag() {
    echo "# status $RC"
    sed 's/^/# conn: /' "$WORK/conn.out" "$WORK/conn.err" | tail -5
    grep -v 'debug:' "$WORK/serve.err" | sed 's/^/# serve: /' | tail -5
}

# --- kpsa on both ends ------------------------------------------------------
for mode in tls dtls; do
    flag=()
    [ "$mode" = dtls ] && flag=(--dtls)
    M=$(echo "$mode" | tr a-z A-Z)
    serve "$SRV_TOKEN" --map "$WORK/map" "${flag[@]}" ||
        not_ok "$M: kpsa serve listens"
    connect "$DEV_TOKEN" "hello-$mode" --kpsa-id "$ID" --id-b /in-cse \
        --sni in-cse.example.net "${flag[@]}"
    if [ "$RC" = 0 ] && grep -q ' id-b=/in-cse$' "$WORK/conn.out" &&
        grep -qx "hello-$mode" "$WORK/conn.out"; then
        ok "$M: the client is bound to IdB and gets its echo"
    else
        not_ok "$M: the client is bound to IdB and gets its echo"
        diag
    fi
    check "$M: the server binds to the Credential-ID and the mapped AE-ID" \
        served "credential-id=12-$ID ae-id=Cdev-01"
    check "$M: the server saw the SNI host name" served \
        "sni=in-cse.example.net"
    check "$M: the TS-0003 10.2.2 suite is negotiated by default" served \
        "cipher=$([ "$mode" = dtls ] && echo PSK-AES128-CCM8 ||
            echo PSK-AES128-CBC-SHA256)"
    connect "$DEV_TOKEN" "unmapped" --kpsa-id "$ID2" --id-b /in-cse \
        --sni in-cse.example.net "${flag[@]}"
    check "$M: an unmapped Credential-ID is still reported, with no entity" \
        bash -c "grep -q 'credential-id=12-$ID2\$' '$WORK/serve.out'"
    stop_serve
    check "$M: SIGTERM stops the server cleanly" [ "$SERVE_RC" = 0 ]
done

# --- peers that are not kpsa ---------------------------------------------
write_openssl_cnf
serve "$SRV_TOKEN" --map "$WORK/map"
if provider_instrumented; then
    skip "openssl s_client with a handle: bound and echoed (sanitizer build)"
else
    (echo from-s-client; sleep 0.5) | KPSA_TOKEN=$DEV_TOKEN \
        OPENSSL_CONF=$OPENSSL_CONF_KPSA timeout 20 openssl s_client -brief \
        -connect "127.0.0.1:$PORT" -tls1_2 -psk "$HANDLE" \
        -psk_identity "$ID" -servername in-cse.example.net \
        >"$WORK/conn.out" 2>&1
    check "openssl s_client with a handle: bound and echoed" \
        bash -c "grep -qx from-s-client '$WORK/conn.out' &&
            grep -q 'credential-id=12-$ID ae-id=Cdev-01' '$WORK/serve.out'"
fi

# Resumption is off: each of s_client's six connections (-reconnect) runs
# the PSK exchange and is bound anew.
if ! provider_instrumented; then
    : >"$WORK/serve.out"
    (sleep 2) | KPSA_TOKEN=$DEV_TOKEN OPENSSL_CONF=$OPENSSL_CONF_KPSA \
        timeout 20 openssl s_client -connect "127.0.0.1:$PORT" -tls1_2 \
        -psk "$HANDLE" -psk_identity "$ID" -servername in-cse.example.net \
        -reconnect >"$WORK/conn.out" 2>&1
    check "s_client -reconnect: no session reused, six associations bound" \
        bash -c "! grep -q '^Reused' '$WORK/conn.out' &&
            [ \$(grep -c 'credential-id=12-$ID ae-id' '$WORK/serve.out') = 6 ]"
fi

# gnutls_cli ID KEY [ARGS...]: a device without a token, the raw key.
gnutls_cli() {
    local id=$1 key=$2
    shift 2
    (echo from-gnutls; sleep 0.5) | timeout 20 gnutls-cli --port "$PORT" \
        --pskusername "$id" --pskkey "$key" --sni-hostname in-cse.example.net \
        --priority 'NORMAL:-VERS-ALL:+VERS-TLS1.2:+VERS-DTLS1.2:+PSK:-KX-ALL:+PSK' \
        "$@" 127.0.0.1 >"$WORK/conn.out" 2>&1
}
gnutls_cli "$ID" "$(cat "$WORK/key")"
check "gnutls-cli with the raw key: bound and echoed" \
    bash -c "grep -qx from-gnutls '$WORK/conn.out'"

# An unknown or malformed identity: the unknown_psk_identity alert (115),
# and no token search.
before=$(grep -c 'debug: C_FindObjectsInit' "$WORK/serve.err")
t0=$(date +%s)
gnutls_cli nobody@example.com "$(cat "$WORK/key")"
check "unknown identity: gnutls-cli receives unknown_psk_identity" \
    grep -q 'Received alert \[115\]' "$WORK/conn.out"
gnutls_cli 'no-issuer' "$(cat "$WORK/key")"
check "malformed identity: gnutls-cli receives unknown_psk_identity" \
    grep -q 'Received alert \[115\]' "$WORK/conn.out"
for i in 1 2 3 4 5; do
    gnutls_cli "stranger-$i@example.com" "$(cat "$WORK/key")"
done
after=$(grep -c 'debug: C_FindObjectsInit' "$WORK/serve.err")
# An index read is two enumerations; unknown identities cause at most one
# read per two seconds (the store's refresh interval), not one each.
reads=$(((after - before) / 2))
most=$((($(date +%s) - t0) / 2 + 1))
check "seven unknown identities: $reads index reads in $(($(date +%s) - t0)) s, at most $most" \
    bash -c "[ $reads -le $most ] && [ $reads -lt 7 ]"
check "no internal_error for unknown identities" \
    bash -c "! grep -qi 'internal error' '$WORK/conn.out'"

stop_serve
serve "$SRV_TOKEN" --map "$WORK/map" --dtls
gnutls_cli "$ID" "$(cat "$WORK/key")" --udp
check "gnutls-cli over DTLS with the raw key: bound and echoed" \
    bash -c "grep -qx from-gnutls '$WORK/conn.out' &&
        grep -q 'protocol=DTLSv1.2 .*credential-id=12-$ID ae-id=Cdev-01' '$WORK/serve.out'"
gnutls_cli nobody@example.com "$(cat "$WORK/key")" --udp
check "unknown identity over DTLS: gnutls-cli receives unknown_psk_identity" \
    grep -q 'Received alert \[115\]' "$WORK/conn.out"
stop_serve
serve "$SRV_TOKEN" --map "$WORK/map"

# --- the map: reload without a restart, and a bad reload keeps the old -----
printf '12-%s CSE /mn-cse-7\n' "$ID" >"$WORK/map"
kill -HUP "$SERVE_PID"
sleep 0.5
connect "$DEV_TOKEN" reloaded --kpsa-id "$ID" --id-b /in-cse \
    --sni in-cse.example.net
check "after SIGHUP the new map binds to the CSE-ID" \
    served "credential-id=12-$ID cse-id=/mn-cse-7"
printf 'garbage\n' >"$WORK/map"
kill -HUP "$SERVE_PID"
sleep 0.5
: >"$WORK/serve.out"
connect "$DEV_TOKEN" kept --kpsa-id "$ID" --id-b /in-cse \
    --sni in-cse.example.net
if grep -q "^kpsa: $WORK/map:1: " "$WORK/serve.err"; then
    ok "a malformed map on reload is refused, with its line number"
else
    not_ok "a malformed map on reload is refused, with its line number"
    grep -v debug: "$WORK/serve.err" | sed 's/^/# /'
fi
check "and the map in use stays" served "cse-id=/mn-cse-7"
stop_serve

# --- TLS 1.3 when both ends ask for it (TS-0003 names TLS 1.2 only) -------
printf '12-%s AE Cdev-01\n' "$ID" >"$WORK/map"
serve "$SRV_TOKEN" --map "$WORK/map" --tls1.3
connect "$DEV_TOKEN" hello13 --kpsa-id "$ID" --id-b /in-cse \
    --sni in-cse.example.net --tls1.3
check "--tls1.3: kpsa connect and kpsa serve associate over TLS 1.3" \
    bash -c "[ $RC = 0 ] && grep -q 'protocol=TLSv1.3 .* id-b=/in-cse\$' '$WORK/conn.out' &&
        grep -qx hello13 '$WORK/conn.out'"
check "--tls1.3: the server binds it to the Credential-ID and AE-ID" \
    grep -Eq "protocol=TLSv1.3 cipher=TLS_[A-Z0-9_]+_SHA256 sni=in-cse.example.net credential-id=12-$ID ae-id=Cdev-01" \
    "$WORK/serve.out"
connect "$DEV_TOKEN" hello12 --kpsa-id "$ID" --id-b /in-cse \
    --sni in-cse.example.net
check "--tls1.3 on the server only: a TLS 1.2 client still associates" \
    bash -c "[ $RC = 0 ] && grep -q 'protocol=TLSv1.2 ' '$WORK/conn.out'"
gnutls_cli "$ID" "$(cat "$WORK/key")" --priority \
    'NORMAL:-VERS-ALL:+VERS-TLS1.3:+PSK:+ECDHE-PSK'
check "--tls1.3: gnutls-cli with the raw key over TLS 1.3" \
    bash -c "grep -qx from-gnutls '$WORK/conn.out' &&
        grep -q 'protocol=TLSv1.3 .*credential-id=12-$ID' '$WORK/serve.out'"
if provider_instrumented; then
    skip "--tls1.3: no session ticket is sent (sanitizer build)"
else
    (echo ticket; sleep 0.5) | KPSA_TOKEN=$DEV_TOKEN \
        OPENSSL_CONF=$OPENSSL_CONF_KPSA timeout 20 openssl s_client -msg \
        -connect "127.0.0.1:$PORT" -tls1_3 -psk "$HANDLE" \
        -psk_identity "$ID" -servername in-cse.example.net \
        >"$WORK/conn.out" 2>&1
    check "--tls1.3: associated, and no session ticket is sent" \
        bash -c "grep -qx ticket '$WORK/conn.out' &&
            ! grep -q NewSessionTicket '$WORK/conn.out'"
fi
stop_serve
expect "--tls1.3 with --dtls is refused" 3 \
    "kpsa: TLS 1.3 was asked for over DTLS, and OpenSSL 3.0 has no DTLS 1.3" \
    "$KPSA" serve --listen 127.0.0.1:1 --dtls --tls1.3

# --- SA2 (TS-0003 8.2.1): roles reversed, the same credentials ------------
serve "$DEV_TOKEN"
connect "$SRV_TOKEN" sa2 --kpsa-id "$ID" --id-b Cdev-01 \
    --sni dev-01.example.com
check "SA2: the former server reaches the device, bound to its IdB" \
    bash -c "[ $RC = 0 ] && grep -q ' id-b=Cdev-01\$' '$WORK/conn.out' &&
        grep -qx sa2 '$WORK/conn.out'"
check "SA2: the device binds the association to 12-$ID" \
    served "credential-id=12-$ID"
stop_serve

# --- refusals before anything starts ---------------------------------------
printf '12-%s AE Cdev-01\n12-%s XY Cdev-02\n' "$ID" "$ID2" >"$WORK/badmap"
expect "serve refuses a malformed map, naming the line" 1 \
    "kpsa: $WORK/badmap:2: entity type 'XY' is neither AE nor CSE" \
    "$KPSA" serve --listen 127.0.0.1:1 --map "$WORK/badmap"
PORT=1
expect "connect refuses a KpsaId the token does not hold" 1 \
    "kpsa: nobody@example.com: no whole key family of this KpsaId on the token" \
    "$KPSA" connect 127.0.0.1:1 --kpsa-id nobody@example.com --id-b x \
    --sni a.example.com
expect "connect refuses an IP address without --sni" 2 \
    "kpsa: 127.0.0.1:1: SNI needs a host name, not an IP address (TS-0003 10.2.1): give --sni NAME" \
    "$KPSA" connect 127.0.0.1:1 --kpsa-id "$ID" --id-b x
expect "serve needs a PIN source" 2 \
    "kpsa: a TLS end needs --pin-source or KPSA_PIN_SOURCE: the provider cannot prompt for the PIN" \
    env -u KPSA_PIN_SOURCE "$KPSA" serve --listen 127.0.0.1:1
expect "no kpsa provider serving the context: refused, never a handle as a key" 3 \
    "kpsa: the kpsa provider does not serve this library context: load it (kpsa_provider_load or openssl.cnf) and prefer it (?provider=kpsa), or a handle would be taken for a key" \
    env KPSA_PROVIDER=default "$KPSA" serve --listen 127.0.0.1:1
expect "serve needs --listen" 2 "kpsa: serve: needs --listen ADDR:PORT" \
    "$KPSA" serve

finish
