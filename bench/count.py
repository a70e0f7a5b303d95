#!/usr/bin/env python3
"""Instructions per handshake, counted by valgrind's callgrind: figures
that the load of a shared machine cannot move. Runs kpsa-bench --count K
under callgrind for every protocol and side (none, token, pass, server,
both) with collection toggled on count_step only, and once for K token
HMACs alone; prints a table and appends rows to the CSV.

For each kpsa line: extra = Ir(line) - Ir(none); bound = 1.1 x ops x
Ir(one HMAC alone); own = extra - ops x Ir(one HMAC alone), the work kpsa
adds beyond the token's. The token's own work inside the handshake is the
inclusive count of the module's C_SignInit and C_Sign. Kernel work (the
token's file reads, the sockets) is not counted by callgrind.

usage: bench/count.py --bench PATH --provider PATH --kpsa-id ID
                      --key-file FILE [--csv FILE] [--token-label NAME]
                      [--handshakes K] [--hmacs K]
Environment: KPSA_MODULE, KPSA_TOKEN, KPSA_PIN_SOURCE as for kpsa-bench.
"""
import argparse
import csv
import os
import re
import subprocess
import sys
import tempfile
import time

PROTOCOLS = ["tls1.2-cbc", "tls1.2-ccm8", "dtls1.2-ccm8", "tls1.3-dhe"]
SIDES = ["none", "token", "pass", "server", "both"]
SERVER_OPS = {"tls1.2-cbc": 4, "tls1.2-ccm8": 4, "dtls1.2-ccm8": 4,
              "tls1.3-dhe": 2}
TOKEN_CALLS = re.compile(r"^\s*([\d,]+) .*\?\?\?:(C_SignInit|C_Sign) \[")


def callgrind(args, bench_args, out_dir, name):
    """Runs one count under callgrind; returns (total Ir, token Ir)."""
    out = os.path.join(out_dir, name + ".cg")
    cmd = ["valgrind", "--tool=callgrind", "--toggle-collect=count_step",
           "--callgrind-out-file=" + out, args.bench,
           "--kpsa-id", args.kpsa_id, "--key-file", args.key_file,
           "--provider", args.provider] + bench_args
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        sys.stderr.write(run.stdout + run.stderr)
        raise SystemExit(f"count.py: {name}: kpsa-bench failed")
    total = 0
    with open(out) as f:
        for line in f:
            if line.startswith("totals:"):
                total = int(line.split()[1])
    ann = subprocess.run(["callgrind_annotate", "--inclusive=yes",
                          "--threshold=100", out],
                         capture_output=True, text=True).stdout
    token = 0
    for line in ann.splitlines():
        m = TOKEN_CALLS.match(line)
        if m and "softhsm" in line:
            token += int(m.group(1).replace(",", ""))
    return total, token


def csv_rows(path, label, rows):
    """Appends metric rows under the header kpsa-bench writes."""
    if path is None:
        return
    with open(path, newline="") as f:
        header = next(csv.reader(f), None)
    if header is None:
        return
    date = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=header, extrasaction="ignore")
        for test, proto, side, value, unit in rows:
            w.writerow({"date": date, "token": label, "kind": "instructions",
                        "test": test, "protocol": proto, "kpsa": side,
                        "threads": 1, "value": f"{value:.0f}",
                        "unit": unit})


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("--bench", "--provider", "--kpsa-id", "--key-file"):
        ap.add_argument(name, required=True)
    ap.add_argument("--csv")
    ap.add_argument("--token-label", default="softhsm")
    ap.add_argument("--handshakes", type=int, default=100)
    ap.add_argument("--hmacs", type=int, default=1000)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        hmac, hmac_token = callgrind(args, ["--count", str(args.hmacs),
                                            "--sides", "hmac",
                                            "--protocols", "none"],
                                     tmp, "hmac")
        per_hmac = hmac / args.hmacs
        print(f"One token HMAC alone: {per_hmac:,.0f} Ir, of which "
              f"{hmac_token / args.hmacs:,.0f} in the module's C_SignInit "
              f"and C_Sign")
        rows.append(("Ir per token HMAC alone", "", "hmac", per_hmac, "Ir"))
        print(f"\n{'protocol':<13}{'kpsa':<7}{'Ir/hs':>11}{'extra':>11}"
              f"{'token':>10}{'ops':>4}{'bound':>11}{'own':>10}{'own%':>7}"
              f"  ok")
        for proto in PROTOCOLS:
            ir = {}
            for side in SIDES:
                total, token = callgrind(
                    args, ["--count", str(args.handshakes), "--sides", side,
                           "--protocols", proto], tmp, proto + "-" + side)
                ir[side] = (total / args.handshakes,
                            token / args.handshakes)
            for side in SIDES:
                per, token = ir[side]
                extra = per - ir["none"][0]
                ops = {"server": 1, "both": 2, "token": 1}.get(side, 0)
                ops *= SERVER_OPS[proto]
                bound = 1.1 * ops * per_hmac
                own = extra - ops * per_hmac
                cells = [f"{proto:<13}{side:<7}{per:>11,.0f}"]
                if side == "none":
                    cells.append(f"{'-':>11}{token:>10,.0f}")
                else:
                    cells.append(f"{extra:>11,.0f}{token:>10,.0f}")
                if side in ("server", "both"):
                    ok = "yes" if extra <= bound else "no"
                    cells.append(f"{ops:>4}{bound:>11,.0f}{own:>10,.0f}"
                                 f"{100 * own / (ops * per_hmac):>6.0f}%"
                                 f"  {ok}")
                    rows.append(("Ir bound", proto, side, bound, "Ir"))
                    rows.append(("Ir beyond the token", proto, side, own,
                                 "Ir"))
                print("".join(cells))
                rows.append(("Ir per handshake", proto, side, per, "Ir"))
                rows.append(("Ir in C_SignInit+C_Sign", proto, side, token,
                             "Ir"))
    csv_rows(args.csv, args.token_label, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
