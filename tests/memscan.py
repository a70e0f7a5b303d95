#!/usr/bin/env python3
"""The PSK-constant secrets of a key, and a search for them in the memory
of a running process (standard library only).

  memscan.py secrets KEYHEX
      prints "NAME HEX" for every value that is searched for (below)
  memscan.py selftest
      the SHA-2 compression functions against hashlib, and the known
      answers of docs/key-format.md
  memscan.py session KEYHEX SUITEHEX
      prints a TLS 1.3 SSL_SESSION in PEM (for -psk_session) whose master
      key is KEYHEX and whose cipher suite is SUITEHEX (1302: SHA-384)
  memscan.py scan PID [LABEL=KEYFILE]... [+NAME=HEX]...
      reads /proc/PID/maps and /proc/PID/mem (needs ptrace rights over
      PID: root, or the same user with ptrace_scope 0) and searches the
      whole address space for every value of every key (KEYFILE holds the
      key in hex), and for the markers NAME (bytes given in hex). Prints
      "scanned BYTES REGIONS UNREADABLE", then one line per occurrence:
      "hit LABEL:NAME ADDR REGION PERMS +OFFSET PATH NEAR" for a key's
      value, "mark NAME ..." for a marker. Exit status 0 when no key's
      value was found, 1 when one was, 2 on an error.

What is searched for, for a key K of N octets (docs/key-format.md,
KEY-SCHEDULE.md section 1):

- K itself, and its hex text (lower and upper case);
- the TLS 1.2 plain-PSK premaster PMS = u16 N || 0^N || u16 N || K, and
  SHA-256(PMS) and SHA-384(PMS) (the HMAC key a P_hash uses when PMS is
  longer than the hash block);
- for SHA-256 and SHA-384: the early secret ES = HKDF-Extract(0^Hlen, K),
  the binder key Derive-Secret(ES, "ext binder", ""), the binder's
  finished key, DS = Derive-Secret(ES, "derived", ""), the psk_ke
  handshake secret HS = HKDF-Extract(DS, 0^Hlen), Derive-Secret(HS,
  "derived", "") and the psk_ke master secret MS;
- for every one of these used as an HMAC key (and K itself): the key
  blocks XORed with ipad and opad, and the hash state after compressing
  each (the inner and outer state an HMAC context keeps, which is as good
  as the key), as 32- or 64-bit words in either byte order.

A secret stored zero-padded to one block (Block_H) starts with the secret,
so the searches above find that form too. Every value but the premaster is
also searched for without its first 16 octets (NAME@16): glibc's free
writes its list pointers there, and a freed block keeps the rest.
"""

import hashlib
import hmac
import os
import struct
import sys

# ---- RFC 5869 and RFC 8446 7.1 ----

HASHES = {"sha256": (hashlib.sha256, 32, 64), "sha384": (hashlib.sha384, 48, 128)}


def hkdf_extract(h, salt, ikm):
    return hmac.new(salt, ikm, HASHES[h][0]).digest()


def hkdf_expand_label(h, secret, label, context, length):
    fn, hlen, _ = HASHES[h]
    full = b"tls13 " + label
    info = (struct.pack(">H", length) + bytes([len(full)]) + full +
            bytes([len(context)]) + context)
    out, block, i = b"", b"", 1
    while len(out) < length:
        block = hmac.new(secret, block + info + bytes([i]), fn).digest()
        out += block
        i += 1
    return out[:length]


def derive_secret(h, secret, label, messages=b""):
    fn, hlen, _ = HASHES[h]
    return hkdf_expand_label(h, secret, label, fn(messages).digest(), hlen)


def pms(key):
    n = len(key)
    return struct.pack(">H", n) + bytes(n) + struct.pack(">H", n) + key


def tls13_secrets(h, key):
    hlen = HASHES[h][1]
    es = hkdf_extract(h, bytes(hlen), key)
    binder_key = derive_secret(h, es, b"ext binder")
    bfk = hkdf_expand_label(h, binder_key, b"finished", b"", hlen)
    ds = derive_secret(h, es, b"derived")
    hs = hkdf_extract(h, ds, bytes(hlen))
    hs_derived = derive_secret(h, hs, b"derived")
    ms = hkdf_extract(h, hs_derived, bytes(hlen))
    return [
        ("tls13-%s-early" % h, es),
        ("tls13-%s-binder-key" % h, binder_key),
        ("tls13-%s-binder" % h, bfk),
        ("tls13-%s-derived" % h, ds),
        ("tls13-%s-hs-ke" % h, hs),
        ("tls13-%s-hs-ke-derived" % h, hs_derived),
        ("tls13-%s-ms-ke" % h, ms),
    ]


# ---- SHA-256 and SHA-512 compression, for HMAC's inner and outer state ----


def _iroot(n, k):
    x = 1 << -(-n.bit_length() // k)
    while True:
        y = ((k - 1) * x + n // x ** (k - 1)) // k
        if y >= x:
            return x
        x = y


def _primes(count):
    out, n = [], 2
    while len(out) < count:
        if all(n % p for p in out):
            out.append(n)
        n += 1
    return out


_P = _primes(80)
_K32 = [_iroot(p << 96, 3) & 0xFFFFFFFF for p in _P[:64]]
_K64 = [_iroot(p << 192, 3) & 0xFFFFFFFFFFFFFFFF for p in _P[:80]]
IV = {
    "sha256": [_iroot(p << 64, 2) & 0xFFFFFFFF for p in _P[:8]],
    "sha384": [_iroot(p << 128, 2) & 0xFFFFFFFFFFFFFFFF for p in _P[8:16]],
    "sha512": [_iroot(p << 128, 2) & 0xFFFFFFFFFFFFFFFF for p in _P[:8]],
}


def _compress(state, block, bits):
    if bits == 32:
        mask, k, rounds = 0xFFFFFFFF, _K32, 64
        w = list(struct.unpack(">16I", block))
        s0r, s1r, S0r, S1r = (7, 18, 3), (17, 19, 10), (2, 13, 22), (6, 11, 25)
    else:
        mask, k, rounds = 0xFFFFFFFFFFFFFFFF, _K64, 80
        w = list(struct.unpack(">16Q", block))
        s0r, s1r, S0r, S1r = (1, 8, 7), (19, 61, 6), (28, 34, 39), (14, 18, 41)

    def rotr(x, n):
        return ((x >> n) | (x << (bits - n))) & mask

    for i in range(16, rounds):
        x, y = w[i - 15], w[i - 2]
        s0 = rotr(x, s0r[0]) ^ rotr(x, s0r[1]) ^ (x >> s0r[2])
        s1 = rotr(y, s1r[0]) ^ rotr(y, s1r[1]) ^ (y >> s1r[2])
        w.append((w[i - 16] + s0 + w[i - 7] + s1) & mask)
    a, b, c, d, e, f, g, h = state
    for i in range(rounds):
        t1 = (h + (rotr(e, S1r[0]) ^ rotr(e, S1r[1]) ^ rotr(e, S1r[2])) +
              ((e & f) ^ (~e & g)) + k[i] + w[i]) & mask
        t2 = ((rotr(a, S0r[0]) ^ rotr(a, S0r[1]) ^ rotr(a, S0r[2])) +
              ((a & b) ^ (a & c) ^ (b & c))) & mask
        h, g, f, e, d, c, b, a = g, f, e, (d + t1) & mask, c, b, a, \
            (t1 + t2) & mask
    return [(x + y) & mask for x, y in zip(state, (a, b, c, d, e, f, g, h))]


def _sha2(name, msg):
    """A whole hash through _compress, to check it against hashlib."""
    bits = 32 if name == "sha256" else 64
    bsize = 64 if bits == 32 else 128
    lenfield = 8 if bits == 32 else 16
    padded = msg + b"\x80"
    padded += bytes(-(len(padded) + lenfield) % bsize)
    padded += (len(msg) * 8).to_bytes(lenfield, "big")
    state = IV[name]
    for i in range(0, len(padded), bsize):
        state = _compress(state, padded[i:i + bsize], bits)
    fmt = ">8I" if bits == 32 else ">8Q"
    return struct.pack(fmt, *state)[:{"sha256": 32, "sha384": 48,
                                      "sha512": 64}[name]]


def hmac_states(h, key):
    """The HMAC pad blocks and the states after one compression."""
    fn, _, bsize = HASHES[h]
    if len(key) > bsize:
        key = fn(key).digest()
    key = key + bytes(bsize - len(key))
    bits = 32 if h == "sha256" else 64
    word = "I" if bits == 32 else "Q"
    out = []
    for pad, byte in (("ipad", 0x36), ("opad", 0x5C)):
        block = bytes(x ^ byte for x in key)
        out.append((pad + "-block", block))
        state = _compress(IV[h], block, bits)
        out.append((pad + "-state-le", struct.pack("<8" + word, *state)))
        out.append((pad + "-state-be", struct.pack(">8" + word, *state)))
    return out


# ---- everything searched for, for one key ----


def values(key):
    """[(name, bytes)]: every value searched for."""
    p = pms(key)
    out = [
        ("kpsa", key),
        ("kpsa-hex", key.hex().encode()),
        ("kpsa-HEX", key.hex().upper().encode()),
        ("tls12-pms", p),
        ("tls12-pms-sha256-hashed", hashlib.sha256(p).digest()),
        ("tls12-pms-sha384-hashed", hashlib.sha384(p).digest()),
    ]
    hmac_keys = {"sha256": [("kpsa", key), ("tls12-pms", p)],
                 "sha384": [("kpsa", key), ("tls12-pms", p)]}
    for h in HASHES:
        secrets = tls13_secrets(h, key)
        out += secrets
        # The extract steps whose key is 0^Hlen are no HMAC keys of K; the
        # secrets used as keys: every one of them.
        hmac_keys[h] += secrets
    # A freed heap block keeps its value but for the allocator's pointers
    # in its first 16 octets: the rest of every value is searched too.
    out += [(name + "@16", v[16:]) for name, v in list(out)
            if name != "tls12-pms"]
    for h, keys in hmac_keys.items():
        for name, k in keys:
            for form, v in hmac_states(h, k):
                out.append(("hmac-%s(%s)/%s" % (h, name, form), v))
    return out


def known_answers():
    """docs/key-format.md, Known answers; 0 when all match."""
    key = bytes(range(32))
    want = {
        "tls12-pms-sha256-hashed":
            "231b98cebeff0d24035cb56776076e0fe83738d23e38df503810a87db7e7ae22",
        "tls13-sha256-early":
            "46bd320605c5a6b6163ab70bc6345b92a5f908e79fe58979c23ebb47d1a5e307",
        "tls13-sha256-binder":
            "9f94e68d1b920e77b42694d80e5fc6dcff43270d23f8af4913c18252436fcd74",
        "tls13-sha256-derived":
            "00ee17cb81695a54611530cff810a20eafbddc504e6cf7fa8a7129242d29e943",
        "tls13-sha256-hs-ke":
            "9859803b3c3ddc750d3be02a2b1f673e7173cbeaa722d48391b7998cb96cb771",
        "tls13-sha256-ms-ke":
            "cf751cac9ef5e9ffa867320f801568f0acc0d7394dd2d4d8fa7fcbaa47a16641",
    }
    got = dict(values(key))
    bad = 0
    for name, hexval in want.items():
        if got[name].hex() != hexval:
            print("known answer %s: %s, want %s" % (name, got[name].hex(),
                                                    hexval))
            bad += 1
    return bad


def selftest():
    bad = 0
    for n in (0, 1, 55, 56, 63, 64, 111, 112, 127, 128, 200):
        msg = os.urandom(n)
        for name in ("sha256", "sha384", "sha512"):
            if _sha2(name, msg) != hashlib.new(name, msg).digest():
                print("compression %s differs from hashlib at %d octets" %
                      (name, n))
                bad += 1
    # The state after the pad block, finished by hand, gives HMAC itself.
    key, msg = os.urandom(32), b"m" * 10
    for h in HASHES:
        fn, hlen, bsize = HASHES[h]
        bits = 32 if h == "sha256" else 64
        word = "I" if bits == 32 else "Q"
        st = dict(hmac_states(h, key))
        inner_state = list(struct.unpack(">8" + word, st["ipad-state-be"]))
        outer_state = list(struct.unpack(">8" + word, st["opad-state-be"]))

        def finish(state, data):
            lenfield = 8 if bits == 32 else 16
            padded = data + b"\x80"
            padded += bytes(-(len(padded) + lenfield) % bsize)
            padded += ((bsize + len(data)) * 8).to_bytes(lenfield, "big")
            for i in range(0, len(padded), bsize):
                state = _compress(state, padded[i:i + bsize], bits)
            return struct.pack(">8" + word, *state)[:hlen]

        mac = finish(outer_state, finish(inner_state, msg))
        if mac != hmac.new(key, msg, fn).digest():
            print("HMAC-%s from the pad states differs from hmac" % h)
            bad += 1
    bad += known_answers()
    print("selftest: %s" % ("ok" if bad == 0 else "%d failures" % bad))
    return 0 if bad == 0 else 1


# ---- the memory of a process ----


def read_maps(pid):
    regions = []
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            fields = line.split(None, 5)
            start, end = (int(x, 16) for x in fields[0].split("-"))
            path = fields[5].strip() if len(fields) > 5 else ""
            regions.append((start, end, fields[1], path))
    return regions


def scan(pid, keys, markers=()):
    patterns = []
    for label, key in keys:
        for name, v in values(key):
            patterns.append(("%s:%s" % (label, name), v))
    patterns += markers
    marker_names = set(name for name, _ in markers)
    longest = max([len(v) for _, v in patterns] + [1])
    regions = read_maps(pid)
    hits, scanned, unreadable = [], 0, 0
    # Contiguous regions are searched as one, so that a value across a
    # boundary is found too: TAIL keeps the end of the region before.
    tail, tail_end, tail_start = b"", None, 0
    with open("/proc/%d/mem" % pid, "rb", buffering=0) as mem:
        for start, end, perms, path in regions:
            if path in ("[vvar]", "[vvar_vclock]", "[vsyscall]"):
                tail, tail_end = b"", None
                continue
            data = bytearray()
            ok = True
            pos = start
            while pos < end:
                size = min(end - pos, 1 << 22)
                try:
                    mem.seek(pos)
                    chunk = mem.read(size)
                except (OSError, ValueError, OverflowError):
                    chunk = b""
                if len(chunk) != size:
                    ok = False
                    unreadable += 1
                    break
                data += chunk
                pos += size
            if not ok:
                tail, tail_end = b"", None
                continue
            scanned += len(data)
            if tail_end == start:
                buf = tail + bytes(data)
                base = start - len(tail)
            else:
                buf = bytes(data)
                base = start
            for name, v in patterns:
                i = buf.find(v)
                while i >= 0:
                    addr = base + i
                    # Wholly in the tail: found with the region before.
                    if addr >= start or addr + len(v) > start:
                        hits.append((name, addr))
                    i = buf.find(v, i + 1)
            tail = buf[-(longest - 1):] if longest > 1 else b""
            tail_end = end
    # Report each hit with its region and the nearest file mapping before
    # it (an anonymous region right after a library is often its .bss).
    seen = set()
    out = []
    for name, addr in hits:
        if (name, addr) in seen:
            continue
        seen.add((name, addr))
        region, near = None, ""
        for start, end, perms, path in regions:
            if start <= addr < end:
                region = (start, end, perms, path)
                break
            if path.startswith("/"):
                near = path
        if region is None:
            continue
        start, end, perms, path = region
        out.append("%s %s 0x%x 0x%x-0x%x %s +0x%x %s %s" % (
            "mark" if name in marker_names else "hit", name, addr, start, end, perms, addr - start, path or "[anon]",
            "near=" + near if not path.startswith("/") and near else "-"))
    print("scanned %d %d %d" % (scanned, len(regions), unreadable))
    for line in out:
        print(line)
    return 1 if any(line.startswith("hit ") for line in out) else 0


# ---- a TLS 1.3 external PSK as an SSL_SESSION for -psk_session ----


def _der(tag, content):
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + content


def _der_int(v):
    return _der(0x02, v.to_bytes(v.bit_length() // 8 + 1, "big"))


def session_pem(master_key, suite):
    """OpenSSL's SSL_SESSION_ASN1 (ssl/ssl_asn1.c): version 1, TLS 1.3,
    SUITE (two octets), no session ID, MASTER_KEY, time and timeout."""
    import base64
    import time
    body = (_der_int(1) + _der_int(0x0304) + _der(0x04, suite) +
            _der(0x04, b"") + _der(0x04, master_key) +
            _der(0xA1, _der_int(int(time.time()))) +
            _der(0xA2, _der_int(86400)))
    b64 = base64.encodebytes(_der(0x30, body)).decode()
    return ("-----BEGIN SSL SESSION PARAMETERS-----\n" + b64 +
            "-----END SSL SESSION PARAMETERS-----\n")


def main(argv):
    if len(argv) >= 2 and argv[1] == "selftest":
        return selftest()
    if len(argv) == 3 and argv[1] == "secrets":
        for name, v in values(bytes.fromhex(argv[2])):
            print(name, v.hex())
        return 0
    if len(argv) == 4 and argv[1] == "session":
        sys.stdout.write(session_pem(bytes.fromhex(argv[2]),
                                     bytes.fromhex(argv[3])))
        return 0
    if len(argv) >= 3 and argv[1] == "scan":
        keys, markers = [], []
        for arg in argv[3:]:
            label, _, value = arg.partition("=")
            if label.startswith("+"):
                markers.append((label[1:], bytes.fromhex(value)))
                continue
            with open(value) as f:
                keys.append((label, bytes.fromhex(f.read().strip())))
        try:
            return scan(int(argv[2]), keys, markers)
        except OSError as e:
            print("memscan: %s" % e, file=sys.stderr)
            return 2
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
