#!/usr/bin/env bash
# The kpsa CLI against a real SoftHSM2 token: every rule refused with its
# exact message and exit status, nothing written on a refusal, and no key
# value readable by an independent PKCS#11 client.
# With P11KIT=1 the same runs against the token served by p11-kit server.
here=$(dirname "$0")
# shellcheck source=tests/lib.sh
. "$here/lib.sh"
KPSA=${KPSA:-build/tools/kpsa}

setup_token
[ "${P11KIT:-0}" = 1 ] && start_p11kit_server
T=$TOKEN_LABEL
ID=dev-01@example.com
umask 077
key32=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff
printf '%s\n' "$key32" >"$WORK/k32"
chmod 600 "$WORK/k32"

# --- importing and reading back what is stored, never the key ----------
expect "import from a hex file" 0 "" "$KPSA" import "$ID" --in "$WORK/k32"
run "$KPSA" list
check "list shows the KpsaId" grep -q "^$ID  32  " "$WORK/out"
run "$KPSA" show "$ID"
check "show gives the key length" grep -qx "key-length: 32" "$WORK/out"
check "show gives the protocols" grep -qx \
    "protocols: tls1.2-sha256 tls1.2-sha384 tls1.3-sha256" \
    "$WORK/out"
check "show never prints the key" bash -c "! grep -qi '$key32' '$WORK/out'"
want=$(printf 'kpsa check value' |
    openssl dgst -sha256 -mac HMAC -macopt "hexkey:$key32" |
    sed 's/.*= //' | cut -c1-12)
run "$KPSA" check "$ID"
check "check equals the documented formula" [ "$(cat "$WORK/out")" = "$want" ]
run "$KPSA" list --json
check "list --json is JSON with the KpsaId" python3 -c "
import json,sys
d=json.load(open('$WORK/out'))
sys.exit(0 if d[0]['kpsa-id']=='$ID' and d[0]['whole'] else 1)"

printf '%s' "$key32" | xxd -r -p | base64 >"$WORK/k.b64"
expect "import base64 from standard input" 0 "" \
    "$KPSA" import b64@example.com --format base64 --allow-shared-key \
    --in - <"$WORK/k.b64"
printf '%s' "$key32" | xxd -r -p >"$WORK/k.raw"
expect "import raw bytes, stdin by default" 0 "" \
    "$KPSA" import raw@example.com --format raw --allow-shared-key \
    <"$WORK/k.raw"
run "$KPSA" check raw@example.com
check "raw and hex imports hold the same key" [ "$(cat "$WORK/out")" = "$want" ]
openssl rand -hex 48 >"$WORK/k48"
expect "import a 48-byte key with SHA-384 TLS 1.3 members" 0 "" \
    "$KPSA" import long@example.com --tls13-sha384 --in "$WORK/k48"
run "$KPSA" show long@example.com
check "show lists tls1.3-sha384" grep -q "tls1.3-sha384" "$WORK/out"

# --- refusals: exact message, status, token unchanged -------------------
before=$(snapshot)
expect "same KpsaId twice" 1 \
    "kpsa: $ID: already stored on token '$T'; delete it first (TS-0003 10.6: one Kpsa per KpsaId)" \
    "$KPSA" import "$ID" --in "$WORK/k32"
expect "relative part differing in case" 1 \
    "kpsa: DEV-01@example.com: differs only in letter case from stored '$ID' (TS-0003 10.6: relative parts must be unique)" \
    "$KPSA" import DEV-01@example.com --in "$WORK/k32"
expect "FQDN in another case is the same KpsaId" 1 \
    "kpsa: $ID: already stored on token '$T'; delete it first (TS-0003 10.6: one Kpsa per KpsaId)" \
    "$KPSA" import dev-01@EXAMPLE.com. --in "$WORK/k32"
expect "the same key under a second KpsaId" 1 \
    "kpsa: other@example.com: the same key is stored under 'long@example.com' (TS-0003 10.6 NOTE 3); --allow-shared-key to store it anyway" \
    "$KPSA" import other@example.com --in "$WORK/k48"
expect "a key under 16 bytes" 1 \
    "kpsa: short@example.com: key is 8 bytes; at least 16 unless --allow-short (TS-0003 10.6 NOTE 3)" \
    "$KPSA" import short@example.com --in <(echo 0011223344556677)
printf '%0130d\n' 0 >"$WORK/k65"
expect "a key over 64 bytes" 1 \
    "kpsa: $WORK/k65: key is 65 bytes; at most 64 (RFC 4279 5.3)" \
    "$KPSA" import big@example.com --in "$WORK/k65"
echo 001 >"$WORK/odd"
expect "an odd number of hex digits" 1 \
    "kpsa: $WORK/odd: odd number of hex digits" \
    "$KPSA" import odd@example.com --in "$WORK/odd"
echo 00zz >"$WORK/nothex"
expect "a non-hex character, not echoed" 1 \
    "kpsa: $WORK/nothex: not hex: a non-hex character at offset 2" \
    "$KPSA" import nothex@example.com --in "$WORK/nothex"
expect "an empty key" 1 "kpsa: standard input: key is empty" \
    "$KPSA" import empty@example.com </dev/null
echo '!!!!' >"$WORK/bad.b64"
expect "invalid base64" 1 "kpsa: $WORK/bad.b64: not valid base64" \
    "$KPSA" import b@example.com --format base64 --in "$WORK/bad.b64"
expect "a missing key file" 1 \
    "kpsa: $WORK/missing: No such file or directory" \
    "$KPSA" import m@example.com --in "$WORK/missing"
expect "an unknown key format" 2 "kpsa: pem: format is hex, base64 or raw" \
    "$KPSA" import f@example.com --format pem --in "$WORK/k32"
expect "a KpsaId without '@'" 1 \
    "kpsa: dev.example.com: KpsaId has no '@'; the form is Issuer_Relative_KpsaId@Issuer_FQDN (TS-0003 10.6)" \
    "$KPSA" import dev.example.com --in "$WORK/k32"
expect "'_' without --allow-underscore" 1 \
    "kpsa: dev_1@example.com: Issuer_Relative_KpsaId has '_' at position 4; only TS-0003 V3.18 allows it (--allow-underscore)" \
    "$KPSA" import dev_1@example.com --in "$WORK/k32"
expect "an IP address is no FQDN" 1 \
    "kpsa: d@10.0.0.1: Issuer_FQDN top label '1' is all digits; an IP address is not an FQDN" \
    "$KPSA" import d@10.0.0.1 --in "$WORK/k32"
expect "a control character is shown escaped" 1 \
    "kpsa: d\\x01@example.com: Issuer_Relative_KpsaId has 0x01 at position 2; allowed are letters, digits, '.' and '-' (TS-0003 10.6)" \
    "$KPSA" import "$(printf 'd\001@example.com')" --in "$WORK/k32"
check "no refusal changed the token" [ "$(snapshot)" = "$before" ]
chmod 644 "$WORK/k32"
expect "a key file others can read is warned about" 1 \
    "kpsa: $WORK/k32: warning: key file is readable by others
kpsa: $ID: already stored on token '$T'; delete it first (TS-0003 10.6: one Kpsa per KpsaId)" \
    "$KPSA" import "$ID" --in "$WORK/k32"
chmod 600 "$WORK/k32"

echo 00112233445566778899aabbccddeeff >"$WORK/k16"
echo 00112233445566778899aabbccddeeff00 >"$WORK/k17"
expect "a 16-byte key" 0 "" "$KPSA" import k16@example.com --in "$WORK/k16"
expect "the same key with a zero byte more is another key" 0 "" \
    "$KPSA" import k17@example.com --in "$WORK/k17"

expect "'_' with --allow-underscore" 0 "" \
    "$KPSA" import dev_1@example.com --allow-underscore --allow-short \
    --allow-shared-key --in <(echo 0011223344556677)
expect "--allow-short stores a short key" 0 "" "$KPSA" show dev_1@example.com

# --- usage --------------------------------------------------------------
expect "an option of another command" 2 \
    "kpsa: list: an option does not apply; see kpsa --help" \
    "$KPSA" list --yes
expect "a missing KpsaId" 2 "kpsa: show: takes one KpsaId" "$KPSA" show
run "$KPSA" frobnicate
check "an unknown command is a usage error" [ "$RC" -eq 2 ]
run "$KPSA" --help
check "--help lists every command" bash -c "for c in import generate list \
    show check delete validate; do grep -q \"kpsa \$c\" '$WORK/out' || \
    exit 1; done"
expect "validate prints the canonical form" 0 "" \
    "$KPSA" validate Dev@Example.COM.
check "validate lowers the FQDN only" grep -qx "Dev@example.com" "$WORK/out"

# --- PIN and module -----------------------------------------------------
expect "no PIN source and no terminal" 1 \
    "kpsa: no PIN source: give --pin-source file:PATH or set KPSA_PIN_SOURCE" \
    env -u KPSA_PIN_SOURCE "$KPSA" list </dev/null
expect "a PIN on the command line is refused, not echoed" 1 \
    "kpsa: PIN source must be file:PATH; a PIN is never taken from the command line" \
    "$KPSA" --pin-source 1234 list
echo 9999 >"$WORK/badpin"
expect "a wrong PIN names CKR_PIN_INCORRECT" 3 \
    "kpsa: token '$T': C_Login failed: CKR_PIN_INCORRECT" \
    "$KPSA" --pin-source "file:$WORK/badpin" list
expect "no module" 1 \
    "kpsa: no PKCS#11 module: give --module PATH or set KPSA_MODULE" \
    env -u KPSA_MODULE "$KPSA" list
run "$KPSA" --module "$WORK/none.so" list
check "a module that does not load is a token failure" [ "$RC" -eq 3 ]

# The prompt: the PIN typed on a terminal is read without echo. The pause
# lets kpsa turn echo off before the PIN arrives, as a person would.
if command -v script >/dev/null; then
    (sleep 1; printf '1234\n') |
        env -u KPSA_PIN_SOURCE script -qec "$KPSA list" /dev/null \
        >"$WORK/tty" 2>&1
    check "a terminal prompts for the PIN" grep -q "^PIN for token '$T': " \
        "$WORK/tty"
    check "and the prompted PIN logs in" grep -q "^$ID " "$WORK/tty"
    check "and it is not echoed" bash -c "! grep -q 1234 '$WORK/tty'"
fi

# --- token selection by RFC 7512 URI ------------------------------------
if [ "${P11KIT:-0}" != 1 ]; then
    softhsm2-util --init-token --free --label kpsa-two --so-pin 5678 \
        --pin 1234 >/dev/null
    run env -u KPSA_TOKEN "$KPSA" list
    check "two tokens and no URI is an error listing both" bash -c \
        "[ $RC -eq 1 ] && grep -q \"^kpsa: 'pkcs11:' matches 2 tokens: .*; name one with --token pkcs11:token=... or serial=...\$\" '$WORK/err' && grep -q \"'$T' (serial [0-9a-f]*)\" '$WORK/err' && grep -q \"'kpsa-two' (serial [0-9a-f]*)\" '$WORK/err'"
    expect "a URI matching no token" 1 \
        "kpsa: no token matches 'pkcs11:token=nope'" \
        "$KPSA" --token "pkcs11:token=nope" list
    serial=$(softhsm2-util --show-slots | awk -v t=kpsa-two '
        /Serial number/ {s=$NF} /Label:/ && $2==t {print s}')
    run "$KPSA" --token "pkcs11:serial=$serial" list
    check "serial= selects the second token (empty)" \
        bash -c "[ $RC -eq 0 ] && [ ! -s '$WORK/out' ]"
    slot=$(softhsm2-util --show-slots | awk -v t=$T '
        /^Slot [0-9]/ {s=$2} /Label:/ && $2==t {print s}')
    run "$KPSA" --token "pkcs11:slot-id=$slot" list
    check "slot-id= selects the first token" grep -q "^$ID " "$WORK/out"
    run "$KPSA" --token "pkcs11:manufacturer=SoftHSM%20project;token=$T" list
    check "manufacturer= and token= together" grep -q "^$ID " "$WORK/out"
    run env -u KPSA_PIN_SOURCE "$KPSA" \
        --token "pkcs11:token=$T?pin-source=file:$WORK/pin" list </dev/null
    check "a pin-source in the URI is used" grep -q "^$ID " "$WORK/out"
    run "$KPSA" --token "pkcs11:token=$T;slot-description=nope" list
    check "slot attributes of the URI select too" [ "$RC" -eq 1 ]
    expect "a pin-value in the URI is refused" 1 \
        "kpsa: token URI carries pin-value; give the PIN with --pin-source file:PATH instead" \
        "$KPSA" --token "pkcs11:token=$T?pin-value=1234" list
fi

# --- generate -----------------------------------------------------------
expect "generate writes the key once" 0 "" \
    "$KPSA" generate gen@example.com --out "$WORK/gen.hex"
check "the key file is 0600" [ "$(stat -c %a "$WORK/gen.hex")" = 600 ]
check "the key file holds 32 bytes in hex" grep -qxE '[0-9a-f]{64}' \
    "$WORK/gen.hex"
gen_check=$(printf 'kpsa check value' |
    openssl dgst -sha256 -mac HMAC -macopt "hexkey:$(cat "$WORK/gen.hex")" |
    sed 's/.*= //' | cut -c1-12)
run "$KPSA" check gen@example.com
check "the file and the token hold the same key" \
    [ "$(cat "$WORK/out")" = "$gen_check" ]
before=$(snapshot)
expect "generate never overwrites a file" 1 \
    "kpsa: $WORK/gen.hex: exists; a key file is never overwritten" \
    "$KPSA" generate gen2@example.com --out "$WORK/gen.hex"
expect "generate under a stored KpsaId" 1 \
    "kpsa: gen@example.com: already stored on token '$T'; delete it first (TS-0003 10.6: one Kpsa per KpsaId)" \
    "$KPSA" generate gen@example.com --out "$WORK/gen-again.hex"
check "a refused generate leaves no file" [ ! -e "$WORK/gen-again.hex" ]
expect "--bytes out of range" 2 "kpsa: 65: --bytes takes 1 to 64" \
    "$KPSA" generate g3@example.com --bytes 65
check "refused generates changed nothing" [ "$(snapshot)" = "$before" ]
expect "generate 64 bytes" 0 "" \
    "$KPSA" generate g64@example.com --bytes 64 --out "$WORK/g64.hex"
check "64 bytes written" grep -qxE '[0-9a-f]{128}' "$WORK/g64.hex"

# --- an independent PKCS#11 client sees sensitive, unextractable keys ---
p11tool() {
    pkcs11-tool --module "$KPSA_MODULE" --token-label "$T" --login \
        --pin 1234 "$@"
}
p11tool --list-objects >"$WORK/objects" 2>/dev/null
check "pkcs11-tool lists kpsa's keys" grep -q "label: *$ID" "$WORK/objects"
check "every secret key is sensitive" bash -c "
    [ \$(grep -c '^Secret Key Object' '$WORK/objects') -eq \
      \$(grep -c 'Access: *sensitive' '$WORK/objects') ]"
check "no key is extractable" bash -c \
    "! grep -E 'Access:.*(^|[ ,])extractable' '$WORK/objects'"
for member in kpsa kpsa-sha256 tls12-pms-sha256 tls13-sha256-early; do
    id=$(printf 'kpsa1:%s' "$member" | xxd -p | tr -d '\n')
    run p11tool --read-object --type secrkey --id "$id" --label "$ID"
    check "pkcs11-tool cannot read $member" \
        bash -c "[ $RC -ne 0 ] && ! grep -qi '$key32' '$WORK/out'"
done

# --- delete -------------------------------------------------------------
expect "delete without --yes off a terminal" 1 \
    "kpsa: $ID: not deleted; confirm on a terminal or give --yes" \
    "$KPSA" delete "$ID" </dev/null
expect "delete --yes" 0 "" "$KPSA" delete "$ID" --yes
run "$KPSA" list
check "the deleted KpsaId is gone" bash -c "! grep -q '^$ID ' '$WORK/out'"
check "no object labelled with it is left" bash -c \
    "! p11tool --list-objects 2>/dev/null | grep -q 'label: *$ID\$'"
expect "delete of an unknown KpsaId" 1 \
    "kpsa: $ID: not stored on token '$T'" "$KPSA" delete "$ID" --yes
expect "the key can be imported again after delete" 0 "" \
    "$KPSA" import "$ID" --allow-shared-key --in "$WORK/k32"

# --- import --batch: many keys in one session, one line per refusal ----
newkey() { openssl rand -hex 32; }
kcv() {
    printf 'kpsa check value' | openssl dgst -sha256 -mac HMAC \
        -macopt "hexkey:$1" | sed 's/.*= //' | cut -c1-12
}
# added BEFORE: how many objects the token holds that snapshot BEFORE did
# not, or "gone" if one of those has disappeared.
added() {
    if comm -23 <(printf '%s\n' "$1") <(snapshot) | grep -q .; then
        echo gone
    else
        comm -13 <(printf '%s\n' "$1") <(snapshot) | grep -c .
    fi
}
b1=$(newkey) b2=$(newkey) b3=$(newkey) b4=$(newkey) b5=$(newkey)
printf '%s\n' "$b4" >"$WORK/b4.hex"
printf '%s\n' "$b5" >"$WORK/b5.hex"
cat >"$WORK/batch1" <<BATCH
# three keys on their line, two in files of their own

bat-1@batch.example.com $b1
bat-2@batch.example.com	$b2
  bat-3@Batch.Example.COM.   $b3
bat-4@batch.example.com @$WORK/b4.hex
bat-5@batch.example.com @$WORK/b5.hex
BATCH
before=$(snapshot)
expect "import --batch: five keys, no progress bar off a terminal" 0 "" \
    "$KPSA" import --batch "$WORK/batch1"
check "the summary: imported 5, refused 0, time and rate" grep -qxE \
    'imported 5, refused 0, in [0-9]+\.[0-9] s \([0-9]+ keys per minute\)' \
    "$WORK/out"
check "the five families are on the token, 10 objects each" \
    [ "$(added "$before")" = 50 ]
run "$KPSA" list
check "list shows the five KpsaIds, canonical" bash -c "for i in 1 2 3 4 5; do
    grep -q \"^bat-\$i@batch.example.com  32  \" '$WORK/out' || exit 1; done"
run "$KPSA" check bat-3@batch.example.com
check "a key on its line is stored as given" \
    [ "$(cat "$WORK/out")" = "$(kcv "$b3")" ]
run "$KPSA" check bat-5@batch.example.com
check "a key in its own file is stored as given" \
    [ "$(cat "$WORK/out")" = "$(kcv "$b5")" ]

b6=$(newkey) b7=$(newkey)
printf '%s' "$b7" | xxd -r -p | base64 >"$WORK/b7.b64"
printf 'bat-6@batch.example.com %s\nbat-7@batch.example.com @%s\n' "$b6" \
    "$WORK/b7.b64" >"$WORK/batch2"
expect "--batch - reads standard input; --format is for key files" 0 "" \
    "$KPSA" import --batch - --format base64 <"$WORK/batch2"
check "the summary of standard input" grep -qE '^imported 2, refused 0, ' \
    "$WORK/out"
run "$KPSA" check bat-6@batch.example.com
check "a key on its line is hex whatever --format" \
    [ "$(cat "$WORK/out")" = "$(kcv "$b6")" ]
run "$KPSA" check bat-7@batch.example.com
check "a key file is read in --format" \
    [ "$(cat "$WORK/out")" = "$(kcv "$b7")" ]

r1=$(newkey) r2=$(newkey)
printf '%s\n' "$r2" >"$WORK/r2.hex"
cat >"$WORK/batch3" <<BATCH
ok-1@batch.example.com $r1
bad_1@batch.example.com $(newkey)
short@batch.example.com 0011223344556677
ok-1@batch.example.com $(newkey)
OK-1@batch.example.com $(newkey)
shared@batch.example.com $r1
lonely@batch.example.com
$r2
ok-2@batch.example.com @$WORK/r2.hex
bat-1@batch.example.com $(newkey)
nothex@batch.example.com 00zz
nofile@batch.example.com @$WORK/missing
BATCH
B=$WORK/batch3
before=$(snapshot)
expect "a batch with refusals: one exact line each, status 1" 1 \
    "kpsa: $B:2: bad_1@batch.example.com: Issuer_Relative_KpsaId has '_' at position 4; only TS-0003 V3.18 allows it (--allow-underscore)
kpsa: $B:3: short@batch.example.com: key is 8 bytes; at least 16 unless --allow-short (TS-0003 10.6 NOTE 3)
kpsa: $B:4: ok-1@batch.example.com: already stored on token '$T'; delete it first (TS-0003 10.6: one Kpsa per KpsaId)
kpsa: $B:5: OK-1@batch.example.com: differs only in letter case from stored 'ok-1@batch.example.com' (TS-0003 10.6: relative parts must be unique)
kpsa: $B:6: shared@batch.example.com: the same key is stored under 'ok-1@batch.example.com' (TS-0003 10.6 NOTE 3); --allow-shared-key to store it anyway
kpsa: $B:7: lonely@batch.example.com: one field, not two: a line is KPSAID KEY-HEX or KPSAID @PATH
kpsa: $B:8: one field, not two: a line is KPSAID KEY-HEX or KPSAID @PATH
kpsa: $B:10: bat-1@batch.example.com: already stored on token '$T'; delete it first (TS-0003 10.6: one Kpsa per KpsaId)
kpsa: $B:11: nothex@batch.example.com: not hex: a non-hex character at offset 2
kpsa: $B:12: nofile@batch.example.com: key file $WORK/missing: No such file or directory" \
    "$KPSA" import --batch "$B"
check "no refusal shows a key" bash -c \
    "! grep -qi -e '$r1' -e '$r2' -e 0011223344556677 '$WORK/err'"
check "the summary: imported 2, refused 10" grep -qxE \
    'imported 2, refused 10, in [0-9]+\.[0-9] s \([0-9]+ keys per minute\)' \
    "$WORK/out"
check "the token gained the two good families and nothing else" \
    [ "$(added "$before")" = 20 ]
p11tool --list-objects >"$WORK/objects" 2>/dev/null
for id in ok-1 ok-2; do
    check "10 objects labelled $id@batch.example.com" [ "$(grep -cE \
        "label: *'?$id@batch\.example\.com'?\$" "$WORK/objects")" = 10 ]
done
check "none labelled with a refused KpsaId" bash -c "! grep -E \
    'label: *.?(bad_1|short|OK-1|shared|lonely|nothex|nofile)@' \
    '$WORK/objects'"

expect "--batch and a KpsaId" 2 \
    "kpsa: import: takes no KpsaId with --batch; its lines name them" \
    "$KPSA" import --batch "$WORK/batch1" x@batch.example.com
expect "--batch and --in" 2 \
    "kpsa: import: --batch and --in exclude each other; a batch line names its key file" \
    "$KPSA" import --batch "$WORK/batch1" --in "$WORK/k32"
expect "a missing batch file" 1 \
    "kpsa: $WORK/missing: No such file or directory" \
    "$KPSA" import --batch "$WORK/missing"
expect "an empty batch imports nothing" 0 "" \
    "$KPSA" import --batch - </dev/null
check "and says so" grep -qE '^imported 0, refused 0, ' "$WORK/out"

if command -v script >/dev/null; then
    printf 'tty-1@batch.example.com %s\n' "$(newkey)" >"$WORK/batch4"
    script -qec "'$KPSA' import --batch '$WORK/batch4'" /dev/null \
        >"$WORK/tty" 2>&1
    check "on a terminal, a progress bar redrawn in place" grep -q \
        "$(printf '\r')\[#\{30\}\] 1/1 keys" "$WORK/tty"
fi

# faultmod fails the 12th C_CreateObject: the 2nd object of the 2nd key.
if [ "${P11KIT:-0}" != 1 ] && [ -e "${FAULTMOD:-}" ]; then
    printf 'f-%s@batch.example.com %s\n' 1 "$(newkey)" 2 "$(newkey)" \
        3 "$(newkey)" >"$WORK/batch5"
    before=$(snapshot)
    expect "a token failure stops the batch with status 3" 3 \
        "kpsa: $WORK/batch5:2: f-2@batch.example.com: member kpsa-sha256: C_CreateObject failed: CKR_DEVICE_MEMORY
kpsa: $WORK/batch5:2: batch stopped; this key and the 1 after it were not imported" \
        env KPSA_FAULT_MODULE="$SOFTHSM_MODULE" \
        KPSA_FAULT_FUNC=C_CreateObject KPSA_FAULT_AT=12 \
        KPSA_FAULT_RV=CKR_DEVICE_MEMORY \
        "$KPSA" --module "$FAULTMOD" import --batch "$WORK/batch5"
    check "the summary counts the key before it" grep -qE \
        '^imported 1, refused 0, ' "$WORK/out"
    check "only that key's family was written" [ "$(added "$before")" = 10 ]
fi

finish
