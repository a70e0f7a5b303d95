#!/usr/bin/env python3
"""A lossy UDP path on 127.0.0.1 for the DTLS tests.

lossy.py LISTEN_PORT TARGET_PORT [--drop-up LIST] [--drop-down LIST]
         [--log FILE] [--parent PID]

Listens on 127.0.0.1:LISTEN_PORT and forwards each client's datagrams to
127.0.0.1:TARGET_PORT from an upstream socket of that client's own; what
comes back on it goes to that client. Datagrams are counted per direction
from 1 ("up": client to target, "down": target to client, over all
clients); those whose index is listed in --drop-up or --drop-down (comma
separated) are dropped. One line per datagram goes to the log, flushed at
once:

    up 2 len=171 passed handshake=ClientHello:cookie=16
    down 1 len=44 dropped handshake=HelloVerifyRequest

Each DTLS record of the datagram is named: a handshake record of epoch 0
by its message type, an encrypted one (epoch > 0) as "encrypted", other
records by content type; a ClientHello also by the length of the cookie
it carries. Prints "ready" once bound; ends on SIGTERM or SIGINT, or
when its parent (PID, by default the one it started with) goes away.
"""

import argparse
import os
import select
import signal
import socket
import sys

HOST = "127.0.0.1"

HANDSHAKE_TYPES = {
    0: "HelloRequest",
    1: "ClientHello",
    2: "ServerHello",
    3: "HelloVerifyRequest",
    4: "NewSessionTicket",
    11: "Certificate",
    12: "ServerKeyExchange",
    13: "CertificateRequest",
    14: "ServerHelloDone",
    15: "CertificateVerify",
    16: "ClientKeyExchange",
    20: "Finished",
}

CONTENT_TYPES = {
    20: "ChangeCipherSpec",
    21: "Alert",
    22: "Handshake",
    23: "ApplicationData",
}

RECORD_HEADER = 13


def index_list(text):
    """'1,3' -> {1, 3}; '' -> empty set."""
    out = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        n = int(part)
        if n < 1:
            raise argparse.ArgumentTypeError("indexes start at 1: %r" % part)
        out.add(n)
    return out


def hello_cookie_len(hs):
    """The cookie length of a DTLS ClientHello handshake message (header
    of 12 bytes, then version, random, session_id, cookie); None when this
    fragment does not hold it."""
    if len(hs) < 12 or hs[6:9] != b"\0\0\0":
        return None  # not the first fragment
    at = 12 + 2 + 32  # session_id length
    if len(hs) <= at:
        return None
    at += 1 + hs[at]  # cookie length
    if len(hs) <= at:
        return None
    return hs[at]


def describe(data):
    """The records of one datagram, as 'handshake=ClientHello ...' words."""
    words = []
    off = 0
    while off < len(data):
        if len(data) - off < RECORD_HEADER:
            words.append("truncated-record")
            break
        ctype = data[off]
        epoch = (data[off + 3] << 8) | data[off + 4]
        length = (data[off + 11] << 8) | data[off + 12]
        body = data[off + RECORD_HEADER:off + RECORD_HEADER + length]
        if ctype == 22:
            if epoch != 0:
                words.append("handshake=encrypted")
            elif body:
                mtype = body[0]
                word = "handshake=" + HANDSHAKE_TYPES.get(mtype,
                                                          "type%d" % mtype)
                cookie = hello_cookie_len(body) if mtype == 1 else None
                if cookie is not None:
                    word += ":cookie=%d" % cookie
                words.append(word)
            else:
                words.append("handshake=empty")
        else:
            words.append("record=" +
                         CONTENT_TYPES.get(ctype, "type%d" % ctype))
        if len(body) < length:
            words.append("truncated-record")
            break
        off += RECORD_HEADER + length
    return " ".join(words)


class Proxy:
    def __init__(self, listen_port, target_port, drop_up, drop_down, log):
        self.target = (HOST, target_port)
        self.drop = {"up": drop_up, "down": drop_down}
        self.count = {"up": 0, "down": 0}
        self.log = log
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.listener.bind((HOST, listen_port))
        self.upstream = {}  # client address -> socket towards the target
        self.client_of = {}  # upstream socket -> client address

    def record(self, direction, data):
        """Counts the datagram; True when it is to be dropped."""
        self.count[direction] += 1
        n = self.count[direction]
        dropped = n in self.drop[direction]
        line = "%s %d len=%d %s" % (direction, n, len(data),
                                    "dropped" if dropped else "passed")
        what = describe(data)
        if what:
            line += " " + what
        if self.log is not None:
            self.log.write(line + "\n")
            self.log.flush()
        return dropped

    def upstream_for(self, client):
        sock = self.upstream.get(client)
        if sock is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((HOST, 0))
            sock.connect(self.target)
            self.upstream[client] = sock
            self.client_of[sock] = client
        return sock

    def from_client(self):
        data, client = self.listener.recvfrom(65535)
        if self.record("up", data):
            return
        try:
            self.upstream_for(client).send(data)
        except OSError:
            pass  # e.g. ECONNREFUSED from an earlier send: UDP goes on

    def from_target(self, sock):
        try:
            data = sock.recv(65535)
        except OSError:
            return  # ICMP port unreachable reported on the socket
        if self.record("down", data):
            return
        try:
            self.listener.sendto(data, self.client_of[sock])
        except OSError:
            pass

    def run(self, parent):
        while True:
            if os.getppid() != parent:
                return
            socks = [self.listener] + list(self.client_of)
            readable, _, _ = select.select(socks, [], [], 0.5)
            for sock in readable:
                if sock is self.listener:
                    self.from_client()
                else:
                    self.from_target(sock)


def main():
    ap = argparse.ArgumentParser(description="a lossy UDP proxy on " + HOST)
    ap.add_argument("listen_port", type=int)
    ap.add_argument("target_port", type=int)
    ap.add_argument("--drop-up", type=index_list, default=set(),
                    help="1-based indexes of client datagrams to drop")
    ap.add_argument("--drop-down", type=index_list, default=set(),
                    help="1-based indexes of target datagrams to drop")
    ap.add_argument("--log", help="one line per datagram")
    ap.add_argument("--parent", type=int, default=os.getppid(),
                    help="end once this process is no longer the parent")
    args = ap.parse_args()

    def stop(signum, frame):
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if os.getppid() != args.parent:
        return  # gone already
    log = open(args.log, "a", encoding="ascii") if args.log else None
    proxy = Proxy(args.listen_port, args.target_port, args.drop_up,
                  args.drop_down, log)
    print("ready", flush=True)
    proxy.run(args.parent)


if __name__ == "__main__":
    main()
