#!/usr/bin/env python3
"""A hostile TLS 1.2 PSK client that writes its records by hand.

Python's standard library only, no TLS library: the ClientHello, the
ClientKeyExchange with whatever psk_identity bytes the test asks for, the
record layer that splits a large handshake message into several records,
and, when the server takes the identity, the PRF, AES-128-CBC with
HMAC-SHA256 (PSK-AES128-CBC-SHA256, TS-0003 10.2.2) and the Finished
messages, so that the same code is also a good client (the positive
control: "good"). A TLS 1.3 ClientHello with a pre_shared_key extension
("tls13") carries a hostile identity and a random or a computed binder.

Every mode prints one line of key=value words on stdout, e.g.
  stage=cke alert=2.115 closed=1 accepted=0
stage: how far the server let us get (flight: its first flight came;
cke: it answered our ClientKeyExchange; finished: it answered our
Finished); alert=LEVEL.DESCRIPTION of the first alert it sent (none when
it sent none); closed=1 when it closed the connection after that;
accepted=1 when its ChangeCipherSpec and a verified Finished came back.
Exit status 0 when the exchange ran (whatever the server answered), 3 when
the server's first flight did not come, 2 for a usage error.
"""
import argparse
import hashlib
import hmac
import os
import select
import socket
import struct
import sys
import time

# ---- AES-128 (FIPS-197), both directions; slow, but only a few blocks ----


def _xtime(a):
    a <<= 1
    return (a ^ 0x11B) & 0xFF if a & 0x100 else a


def _mul(a, b):
    r = 0
    while b:
        if b & 1:
            r ^= a
        a = _xtime(a)
        b >>= 1
    return r


def _make_sbox():
    inv = [0] * 256
    for a in range(1, 256):
        for b in range(1, 256):
            if _mul(a, b) == 1:
                inv[a] = b
                break
    sbox = []
    for a in range(256):
        x = inv[a]
        s = x
        for _ in range(4):
            x = ((x << 1) | (x >> 7)) & 0xFF
            s ^= x
        sbox.append(s ^ 0x63)
    return sbox


SBOX = _make_sbox()
INV_SBOX = [0] * 256
for _i, _s in enumerate(SBOX):
    INV_SBOX[_s] = _i


def aes_expand(key):
    w = [list(key[i:i + 4]) for i in range(0, 16, 4)]
    rcon = 1
    for i in range(4, 44):
        t = list(w[i - 1])
        if i % 4 == 0:
            t = [SBOX[b] for b in t[1:] + t[:1]]
            t[0] ^= rcon
            rcon = _xtime(rcon)
        w.append([a ^ b for a, b in zip(w[i - 4], t)])
    return [sum(w[4 * r:4 * r + 4], []) for r in range(11)]


def _add(s, k):
    return [a ^ b for a, b in zip(s, k)]


# The state is column-major: byte r + 4c is row r of column c.
def _shift(s, sign):
    return [s[r + 4 * ((c + sign * r) % 4)] for c in range(4) for r in range(4)]


def _mix(s, m):
    out = []
    for c in range(4):
        col = s[4 * c:4 * c + 4]
        for r in range(4):
            v = 0
            for k in range(4):
                v ^= _mul(m[(k - r) % 4], col[k])
            out.append(v)
    return out


def aes_encrypt_block(rk, block):
    s = _add(list(block), rk[0])
    for r in range(1, 11):
        s = _shift([SBOX[b] for b in s], 1)
        if r != 10:
            s = _mix(s, [2, 3, 1, 1])
        s = _add(s, rk[r])
    return bytes(s)


def aes_decrypt_block(rk, block):
    s = _add(list(block), rk[10])
    for r in range(9, -1, -1):
        s = [INV_SBOX[b] for b in _shift(s, -1)]
        s = _add(s, rk[r])
        if r != 0:
            s = _mix(s, [14, 11, 13, 9])
    return bytes(s)


def cbc_encrypt(key, iv, data):
    rk, out, prev = aes_expand(key), b"", iv
    for i in range(0, len(data), 16):
        prev = aes_encrypt_block(rk, bytes(a ^ b for a, b in
                                           zip(data[i:i + 16], prev)))
        out += prev
    return out


def cbc_decrypt(key, iv, data):
    rk, out, prev = aes_expand(key), b"", iv
    for i in range(0, len(data), 16):
        blk = data[i:i + 16]
        out += bytes(a ^ b for a, b in zip(aes_decrypt_block(rk, blk), prev))
        prev = blk
    return out


def aes_selftest():
    key = bytes(range(16))
    pt = bytes.fromhex("00112233445566778899aabbccddeeff")
    want = bytes.fromhex("69c4e0d86a7b0430d8cdb78070b4c55a")
    rk = aes_expand(key)
    assert aes_encrypt_block(rk, pt) == want, "AES-128 FIPS-197 C.1"
    assert aes_decrypt_block(rk, want) == pt, "AES-128 inverse"


# ---- TLS 1.2 PRF (RFC 5246 5) and the TLS 1.3 key schedule pieces ----


def p_sha256(secret, seed, n):
    out, a = b"", seed
    while len(out) < n:
        a = hmac.new(secret, a, hashlib.sha256).digest()
        out += hmac.new(secret, a + seed, hashlib.sha256).digest()
    return out[:n]


def prf(secret, label, seed, n):
    return p_sha256(secret, label + seed, n)


def hkdf_extract(salt, ikm):
    return hmac.new(salt, ikm, hashlib.sha256).digest()


def hkdf_expand_label(secret, label, context, n):
    full = b"tls13 " + label
    info = struct.pack(">HB", n, len(full)) + full + \
        struct.pack(">B", len(context)) + context
    out, t, i = b"", b"", 1
    while len(out) < n:
        t = hmac.new(secret, t + info + bytes([i]), hashlib.sha256).digest()
        out += t
        i += 1
    return out[:n]


# ---- records and handshake messages ----

CT_CCS, CT_ALERT, CT_HANDSHAKE, CT_APPDATA = 20, 21, 22, 23
HS_CLIENT_HELLO, HS_SERVER_HELLO, HS_SERVER_KEY_EXCHANGE = 1, 2, 12
HS_SERVER_HELLO_DONE, HS_CLIENT_KEY_EXCHANGE, HS_FINISHED = 14, 16, 20
TLS12 = b"\x03\x03"
PSK_AES128_CBC_SHA256 = 0x00AE
MAX_FRAGMENT = 16384


def u8(b):
    return struct.pack(">B", len(b)) + b


def u16(b):
    return struct.pack(">H", len(b)) + b


def handshake(msg_type, body):
    return struct.pack(">B", msg_type) + struct.pack(">I", len(body))[1:] + body


def records(content_type, data, fragment=MAX_FRAGMENT):
    """The record layer: DATA split into records of at most FRAGMENT."""
    out = []
    for i in range(0, max(len(data), 1), fragment):
        chunk = data[i:i + fragment]
        out.append(struct.pack(">B", content_type) + TLS12 + u16(chunk))
    return out


def client_hello(random, sni, suites, extra_ext=b"", version=TLS12):
    ext = b""
    if sni:
        name = sni if isinstance(sni, bytes) else sni.encode()
        ext += struct.pack(">H", 0) + u16(u16(b"\x00" + u16(name)))
    ext += struct.pack(">H", 0xFF01) + u16(b"\x00")  # renegotiation_info
    ext += extra_ext
    body = (version + random + u8(b"") +
            u16(b"".join(struct.pack(">H", s) for s in suites)) +
            u8(b"\x00") + u16(ext))
    return handshake(HS_CLIENT_HELLO, body)


class Peer:
    """One TCP connection to the server, its record reader and log."""

    def __init__(self, host, port, timeout):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.eof = False
        self.alert = None
        self.timeout = timeout
        self.hs_buf = b""

    def send(self, data):
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def _fill(self, deadline):
        """Reads more bytes; False at end of stream or deadline."""
        if self.eof:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        r, _, _ = select.select([self.sock], [], [], left)
        if not r:
            return False
        try:
            data = self.sock.recv(65536)
        except OSError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def record(self, wait):
        """The next record (type, body) within WAIT seconds, or None."""
        deadline = time.monotonic() + wait
        while True:
            if len(self.buf) >= 5:
                n = struct.unpack(">H", self.buf[3:5])[0]
                if len(self.buf) >= 5 + n:
                    rec = (self.buf[0], self.buf[5:5 + n])
                    self.buf = self.buf[5 + n:]
                    if rec[0] == CT_ALERT and self.alert is None and \
                            len(rec[1]) == 2:
                        self.alert = (rec[1][0], rec[1][1])
                    return rec
            if not self._fill(deadline):
                return None

    def handshake_messages(self, wait, until):
        """Handshake messages (type, raw) until one of type UNTIL."""
        msgs, deadline = [], time.monotonic() + wait
        while True:
            while len(self.hs_buf) >= 4:
                n = struct.unpack(">I", b"\x00" + self.hs_buf[1:4])[0]
                if len(self.hs_buf) < 4 + n:
                    break
                raw, self.hs_buf = self.hs_buf[:4 + n], self.hs_buf[4 + n:]
                msgs.append((raw[0], raw))
                if raw[0] == until:
                    return msgs
            rec = self.record(max(0.0, deadline - time.monotonic()))
            if rec is None or rec[0] != CT_HANDSHAKE:
                return None if rec is None or rec[0] == CT_ALERT else msgs
            self.hs_buf += rec[1]

    def wait_closed(self, wait):
        """True when the server closes within WAIT seconds."""
        deadline = time.monotonic() + wait
        while not self.eof:
            if len(self.buf) >= 5:
                self.record(0)
                continue
            if not self._fill(deadline):
                break
        return self.eof

    def close(self, rst=False):
        if rst:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 struct.pack("ii", 1, 0))
        self.sock.close()


# ---- TLS 1.2 PSK (RFC 4279) ----


class Session:
    """Key material of one PSK-AES128-CBC-SHA256 handshake."""

    def __init__(self, psk, client_random, server_random):
        n = len(psk)
        pms = struct.pack(">H", n) + b"\x00" * n + struct.pack(">H", n) + psk
        self.master = prf(pms, b"master secret",
                          client_random + server_random, 48)
        kb = prf(self.master, b"key expansion",
                 server_random + client_random, 2 * 32 + 2 * 16)
        self.c_mac, self.s_mac = kb[0:32], kb[32:64]
        self.c_key, self.s_key = kb[64:80], kb[80:96]
        self.c_seq = self.s_seq = 0

    def seal(self, content_type, data):
        mac = hmac.new(self.c_mac, struct.pack(">QB", self.c_seq,
                                               content_type) + TLS12 +
                       u16(data), hashlib.sha256).digest()
        self.c_seq += 1
        plain = data + mac
        pad = 15 - len(plain) % 16
        plain += bytes([pad]) * (pad + 1)
        iv = os.urandom(16)
        body = iv + cbc_encrypt(self.c_key, iv, plain)
        return struct.pack(">B", content_type) + TLS12 + u16(body)

    def open(self, content_type, body):
        """The plaintext of a server record, or None when it fails."""
        if len(body) < 16 + 48 or len(body) % 16:
            return None
        plain = cbc_decrypt(self.s_key, body[:16], body[16:])
        pad = plain[-1]
        if pad + 1 + 32 > len(plain) or \
                plain[-pad - 1:] != bytes([pad]) * (pad + 1):
            return None
        data, mac = plain[:-pad - 1 - 32], plain[-pad - 1 - 32:-pad - 1]
        want = hmac.new(self.s_mac, struct.pack(">QB", self.s_seq,
                                                content_type) + TLS12 +
                        u16(data), hashlib.sha256).digest()
        self.s_seq += 1
        return data if hmac.compare_digest(mac, want) else None

    def verify_data(self, label, transcript):
        return prf(self.master, label,
                   hashlib.sha256(transcript).digest(), 12)


def report(stage, peer, accepted=0, **extra):
    alert = "%d.%d" % peer.alert if peer.alert else "none"
    words = ["stage=%s" % stage, "alert=%s" % alert,
             "closed=%d" % (1 if peer.eof else 0), "accepted=%d" % accepted]
    words += ["%s=%s" % kv for kv in extra.items()]
    print(" ".join(words))
    sys.stdout.flush()


def sni_of(args):
    return bytes.fromhex(args.sni_hex) if args.sni_hex else args.sni


def first_flight(peer, args):
    """Sends the ClientHello; returns (transcript, client_random,
    server_random) after ServerHelloDone, or None."""
    c_random = os.urandom(32)
    ch = client_hello(c_random, sni_of(args), [PSK_AES128_CBC_SHA256, 0x00FF])
    for rec in records(CT_HANDSHAKE, ch, args.fragment):
        peer.send(rec)
    msgs = peer.handshake_messages(args.wait, HS_SERVER_HELLO_DONE)
    if not msgs or msgs[-1][0] != HS_SERVER_HELLO_DONE or \
            msgs[0][0] != HS_SERVER_HELLO:
        return None
    sh = msgs[0][1]
    s_random = sh[4 + 2:4 + 2 + 32]
    suite = struct.unpack(">H", sh[4 + 2 + 32 + 1 + sh[4 + 2 + 32]:][:2])[0]
    if suite != PSK_AES128_CBC_SHA256:
        return None
    return ch + b"".join(raw for _, raw in msgs), c_random, s_random


def send_handshake(peer, msg, fragment):
    """Sends MSG in records of at most FRAGMENT bytes, one at a time;
    stops early when the server has already answered. Returns how many
    records went out."""
    recs = records(CT_HANDSHAKE, msg, fragment)
    for i, rec in enumerate(recs):
        if not peer.send(rec):
            return i
        if i + 1 < len(recs):
            r, _, _ = select.select([peer.sock], [], [], 0.05)
            if r:
                return i + 1
    return len(recs)


def finish(peer, args, sess, transcript, line=None):
    """Our CCS and Finished; then the server's, verified; then LINE as
    application data and its echo. Returns (accepted, echoed)."""
    fin = handshake(HS_FINISHED,
                    sess.verify_data(b"client finished", transcript))
    transcript += fin
    peer.send(records(CT_CCS, b"\x01")[0] + sess.seal(CT_HANDSHAKE, fin))
    rec = peer.record(args.wait)
    if rec is None or rec[0] != CT_CCS:
        return 0, 0
    rec = peer.record(args.wait)
    if rec is None or rec[0] != CT_HANDSHAKE:
        return 0, 0
    data = sess.open(CT_HANDSHAKE, rec[1])
    want = handshake(HS_FINISHED,
                     sess.verify_data(b"server finished", transcript))
    if data != want:
        return 0, 0
    if line is None:
        return 1, 0
    peer.send(sess.seal(CT_APPDATA, line.encode() + b"\n"))
    got = b""
    while len(got) < len(line) + 1:
        rec = peer.record(args.wait)
        if rec is None or rec[0] != CT_APPDATA:
            break
        got += sess.open(CT_APPDATA, rec[1]) or b""
    # close_notify, encrypted: level 1, description 0.
    peer.send(sess.seal(CT_ALERT, b"\x01\x00"))
    return 1, 1 if got == line.encode() + b"\n" else 0


def cke_body(args):
    ident = bytes.fromhex(args.identity_hex) if args.identity_hex else \
        (args.identity or "").encode()
    if args.repeat:
        ident = (ident * (args.repeat // max(len(ident), 1) + 1))[:args.repeat]
    claimed = len(ident) + args.length_delta
    body = struct.pack(">H", claimed & 0xFFFF) + ident + \
        bytes.fromhex(args.trailing_hex)
    return body, len(ident)


def mode_cke(args):
    """A whole client flight with the identity the test asks for."""
    peer = Peer(args.host, args.port, args.wait)
    got = first_flight(peer, args)
    if got is None:
        report("hello", peer)
        return 3
    transcript, c_random, s_random = got
    body, n = cke_body(args)
    cke = handshake(HS_CLIENT_KEY_EXCHANGE, body)
    sent = send_handshake(peer, cke, args.fragment)
    nrec = len(records(CT_HANDSHAKE, cke, args.fragment))
    rec = peer.record(args.cke_wait)
    extra = {"identity_len": n, "records": "%d/%d" % (sent, nrec)}
    if rec is not None or peer.eof:
        peer.wait_closed(args.wait)
        report("cke", peer, **extra)
        return 0
    # The server took the identity: it waits for our Finished.
    psk = bytes.fromhex(args.key) if args.key else os.urandom(32)
    sess = Session(psk, c_random, s_random)
    accepted, echoed = finish(peer, args, sess, transcript + cke, args.line)
    if not accepted:
        peer.wait_closed(args.wait)
    report("finished", peer, accepted, echoed=echoed, **extra)
    peer.close()
    return 0


def mode_cut(args):
    """A prefix of a good flight, then close, reset or silence."""
    peer = Peer(args.host, args.port, args.wait)
    c_random = os.urandom(32)
    ch = b"".join(records(CT_HANDSHAKE, client_hello(
        c_random, args.sni, [PSK_AES128_CBC_SHA256, 0x00FF])))
    where, _, n = args.at.partition(":")
    if where == "ch":
        peer.send(ch[:int(n)] if n else ch)
    else:
        got = first_flight(peer, args)
        if got is None:
            report("hello", peer)
            return 3
        transcript, c_random, s_random = got
        ident = args.identity.encode()
        cke = handshake(HS_CLIENT_KEY_EXCHANGE, u16(ident))
        cke_rec = records(CT_HANDSHAKE, cke)[0]
        if where == "cke":
            peer.send(cke_rec[:int(n)])
        else:
            sess = Session(bytes.fromhex(args.key), c_random, s_random)
            peer.send(cke_rec + records(CT_CCS, b"\x01")[0])
            if where == "fin":
                fin = handshake(HS_FINISHED, sess.verify_data(
                    b"client finished", transcript + cke))
                peer.send(sess.seal(CT_HANDSHAKE, fin)[:int(n)])
    if args.then.startswith("silent"):
        # Holds the connection, reading nothing, for the seconds asked;
        # reports when the server gave up on us, if it did.
        t0 = time.monotonic()
        peer.wait_closed(float(args.then.partition(":")[2] or 15))
        report("cut", peer, held="%.1f" % (time.monotonic() - t0))
        peer.close()
        return 0
    report("cut", peer)
    peer.close(rst=args.then == "rst")
    return 0


def mode_dribble(args):
    """The ClientHello a byte at a time, one byte every INTERVAL seconds."""
    peer = Peer(args.host, args.port, args.wait)
    ch = records(CT_HANDSHAKE, client_hello(
        os.urandom(32), args.sni, [PSK_AES128_CBC_SHA256, 0x00FF]))[0]
    t0 = time.monotonic()
    for i in range(args.bytes):
        if i:
            peer.wait_closed(args.interval)
        if peer.eof or not peer.send(ch[i:i + 1]):
            break
    report("dribble", peer, held="%.1f" % (time.monotonic() - t0))
    peer.close()
    return 0


def mode_good(args):
    """The positive control: a whole handshake with the right key."""
    peer = Peer(args.host, args.port, args.wait)
    got = first_flight(peer, args)
    if got is None:
        report("hello", peer)
        return 3
    transcript, c_random, s_random = got
    cke = handshake(HS_CLIENT_KEY_EXCHANGE, u16(args.identity.encode()))
    for rec in records(CT_HANDSHAKE, cke, args.fragment):
        peer.send(rec)
    sess = Session(bytes.fromhex(args.key), c_random, s_random)
    accepted, echoed = finish(peer, args, sess, transcript + cke, args.line)
    report("finished", peer, accepted, echoed=echoed)
    peer.close()
    return 0


# ---- TLS 1.3 (RFC 8446): a ClientHello with a pre_shared_key ----


def mode_tls13(args):
    peer = Peer(args.host, args.port, args.wait)
    ident = bytes.fromhex(args.identity_hex) if args.identity_hex else \
        args.identity.encode()
    if args.repeat:
        ident = (ident * (args.repeat // max(len(ident), 1) + 1))[:args.repeat]

    def ext(t, body):
        return struct.pack(">H", t) + u16(body)

    exts = ext(43, u8(b"\x03\x04"))                 # supported_versions
    # psk_dhe_ke (a libssl server takes psk_ke only with
    # SSL_OP_ALLOW_NO_DHE_KEX), and psk_ke.
    exts += ext(45, u8(b"\x01\x00"))                # psk_key_exchange_modes
    exts += ext(10, u16(b"\x00\x1d"))               # supported_groups
    # An X25519 share of random bytes: the binder is checked, and the
    # ServerHello sent, before the shared secret would matter.
    exts += ext(51, u16(b"\x00\x1d" + u16(os.urandom(32))))  # key_share
    exts += ext(13, u16(b"\x08\x04\x04\x03"))       # signature_algorithms
    identities = u16(u16(ident) + b"\x00\x00\x00\x00")
    binders_len = 2 + 1 + 32
    psk_ext_len = len(identities) + binders_len
    # The ClientHello up to the binders (RFC 8446 4.2.11.2): its length
    # fields already count the binders that follow.
    exts_all_len = len(exts) + 4 + psk_ext_len + 5  # + renegotiation_info
    random = os.urandom(32)
    body_wo = (TLS12 + random + u8(os.urandom(32)) +
               u16(struct.pack(">HH", 0x1301, 0x00FF)) + u8(b"\x00"))
    sni_ext = b""
    if args.sni:
        name = args.sni.encode()
        sni_ext = struct.pack(">H", 0) + u16(u16(b"\x00" + u16(name)))
        exts_all_len += len(sni_ext)
    reneg = struct.pack(">H", 0xFF01) + u16(b"\x00")
    prefix_exts = sni_ext + reneg + exts + struct.pack(">H", 41) + \
        struct.pack(">H", psk_ext_len) + identities
    body_len = len(body_wo) + 2 + exts_all_len
    partial = struct.pack(">B", HS_CLIENT_HELLO) + \
        struct.pack(">I", body_len)[1:] + body_wo + \
        struct.pack(">H", exts_all_len) + prefix_exts
    if args.key:
        early = hkdf_extract(b"\x00" * 32, bytes.fromhex(args.key))
        binder_key = hkdf_expand_label(early, b"ext binder",
                                       hashlib.sha256(b"").digest(), 32)
        fin_key = hkdf_expand_label(binder_key, b"finished", b"", 32)
        binder = hmac.new(fin_key, hashlib.sha256(partial).digest(),
                          hashlib.sha256).digest()
    else:
        binder = os.urandom(32)
    ch = partial + u16(u8(binder))
    assert len(ch) == 4 + body_len, (len(ch), body_len)
    for rec in records(CT_HANDSHAKE, ch, args.fragment):
        if not peer.send(rec):
            break
    rec = peer.record(args.wait)
    psk_selected = 0
    if rec is not None and rec[0] == CT_HANDSHAKE and rec[1][:1] == b"\x02":
        # A ServerHello: did it select our PSK (extension 41)?
        psk_selected = int(b"\x00\x29\x00\x02\x00\x00" in rec[1])
    if rec is None or rec[0] == CT_ALERT or peer.eof:
        peer.wait_closed(args.wait)
        report("hello13", peer, identity_len=len(ident))
    else:
        report("hello13", peer, psk_selected=psk_selected,
               identity_len=len(ident), server_hello=1)
    peer.close()
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=["cke", "cut", "dribble", "good",
                                     "tls13", "selftest"])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--sni", default="in-cse.example.net")
    ap.add_argument("--sni-hex", default="", help="the SNI host name, hex")
    ap.add_argument("--identity", default="")
    ap.add_argument("--identity-hex", default="")
    ap.add_argument("--repeat", type=int, default=0,
                    help="the identity repeated to exactly this length")
    ap.add_argument("--length-delta", type=int, default=0,
                    help="added to the identity's length field")
    ap.add_argument("--trailing-hex", default="",
                    help="bytes after the identity in ClientKeyExchange")
    ap.add_argument("--key", default="", help="the PSK, hex")
    ap.add_argument("--line", default=None, help="application data to echo")
    ap.add_argument("--fragment", type=int, default=MAX_FRAGMENT)
    ap.add_argument("--wait", type=float, default=5.0)
    ap.add_argument("--cke-wait", type=float, default=1.0,
                    help="how long an answer to ClientKeyExchange may take")
    ap.add_argument("--at", default="ch",
                    help="cut: ch[:N], cke:N, ccs, fin:N")
    ap.add_argument("--then", default="close",
                    help="cut: close, rst or silent[:SECONDS]")
    ap.add_argument("--interval", type=float, default=5.0)
    ap.add_argument("--bytes", type=int, default=4)
    args = ap.parse_args()
    aes_selftest()
    if args.mode == "selftest":
        print("selftest ok")
        return 0
    try:
        return {"cke": mode_cke, "cut": mode_cut, "dribble": mode_dribble,
                "good": mode_good, "tls13": mode_tls13}[args.mode](args)
    except (ConnectionError, socket.timeout) as e:
        print("stage=connect alert=none closed=1 accepted=0 error=%s"
              % type(e).__name__)
        return 3


if __name__ == "__main__":
    sys.exit(main())
