#!/usr/bin/env python3
"""Markdown tables of a kpsa-bench CSV (bench/results.csv), as
docs/performance.md shows them: the handshake matrix per token
configuration, the instruction counts, two threads over one, and every
scale, flood and token-operation figure.

usage: bench/tables.py [CSV]    (default bench/results.csv)
"""
import csv
import sys
from collections import OrderedDict

SIDES = ["none", "token", "pass", "server", "both"]
DASH = "–"


def cell(row, key, fmt=None):
    value = row.get(key, "")
    if value == "":
        return DASH
    if fmt is None:
        return value
    return fmt.format(float(value))


def matrix(rows, token):
    head = ["protocol", "kpsa", "thr", "hs/s", "µs/hs", "ratio", "ops",
            "op alone", "op amid", "extra", "bound (alone)", "",
            "bound (amid)", "", "CPU µs/hs", "CPU extra",
            "CPU bound (alone)", "", "CPU bound (amid)", ""]
    cols = [("hs_per_s", "{:.0f}"), ("us_per_hs", "{:.1f}"),
            ("ratio", "{:.2f}"), ("ops_per_hs", "{:.0f}"),
            ("op_us", "{:.1f}"), ("op_hs_us", "{:.1f}"),
            ("extra_us", "{:.1f}"), ("bound_us", "{:.1f}"), ("within", None),
            ("bound_hs_us", "{:.1f}"), ("within_hs", None),
            ("cpu_us_per_hs", "{:.1f}"), ("cpu_extra_us", "{:.1f}"),
            ("cpu_bound_us", "{:.1f}"), ("cpu_within", None),
            ("cpu_bound_hs_us", "{:.1f}"), ("cpu_within_hs", None)]
    out = ["| " + " | ".join(head) + " |",
           "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|:-:|--:|:-:|--:"
           "|--:|--:|:-:|--:|:-:|"]
    for r in rows:
        if r["token"] != token or r["test"] != "matrix":
            continue
        fields = [r["protocol"], r["kpsa"], r["threads"]]
        fields += [cell(r, k, f) for k, f in cols]
        out.append("| " + " | ".join(fields) + " |")
    return out


def instructions(rows):
    ir = {}
    hmac = None
    for r in rows:
        if r["kind"] != "instructions":
            continue
        if r["test"] == "Ir per token HMAC alone":
            hmac = int(float(r["value"]))
            continue
        ir[(r["protocol"], r["kpsa"], r["test"])] = int(float(r["value"]))
    out = []
    if hmac is not None:
        out.append(f"One token HMAC alone: {hmac:,} instructions.")
        out.append("")
    out += ["| protocol | kpsa | instructions/hs | extra | in `C_SignInit`+"
            "`C_Sign` | bound 1.1 x ops x HMAC | beyond the token | within |",
            "|---|---|--:|--:|--:|--:|--:|:-:|"]
    protocols = OrderedDict()
    for proto, side, _ in ir:
        protocols[proto] = True
    for proto in protocols:
        base = ir.get((proto, "none", "Ir per handshake"))
        for side in SIDES:
            total = ir.get((proto, side, "Ir per handshake"))
            if total is None:
                continue
            sign = ir.get((proto, side, "Ir in C_SignInit+C_Sign"), 0)
            bound = ir.get((proto, side, "Ir bound"))
            beyond = ir.get((proto, side, "Ir beyond the token"))
            extra = f"{total - base:,}" if side != "none" else DASH
            if bound is None:
                b = own = ok = DASH
            else:
                b = f"{bound:,}"
                pct = 100.0 * beyond / (bound / 1.1)
                own = f"{beyond:+,} ({pct:+.0f} %)"
                ok = "yes" if total - base <= bound else "no"
            out.append(f"| {proto} | {side} | {total:,} | {extra} | "
                       f"{sign:,} | {b} | {own} | {ok} |")
    return out


def scaling(rows):
    rate, cpu = {}, {}
    for r in rows:
        if r["test"] != "matrix":
            continue
        key = (r["token"], r["protocol"], r["kpsa"], r["threads"])
        rate[key] = float(r["hs_per_s"])
        cpu[key] = float(r["cpu_us_per_hs"])
    out = ["| configuration | " + " | ".join(SIDES) + " |",
           "| --- |" + " --- |" * len(SIDES)]
    configs = OrderedDict()
    for token, proto, _, _ in rate:
        configs[(token, proto)] = True
    for token, proto in configs:
        fields = []
        for side in SIDES:
            one = (token, proto, side, "1")
            two = (token, proto, side, "2")
            if one in rate and two in rate:
                fields.append(f"{rate[two] / rate[one]:.2f} / "
                              f"{cpu[two] / cpu[one]:.2f}")
            else:
                fields.append(DASH)
        out.append(f"| {token} {proto} | " + " | ".join(fields) + " |")
    return out


def figures(rows, kinds):
    out = ["| token | kind | figure | value | unit |",
           "| --- | --- | --- | --: | --- |"]
    for r in rows:
        if r["kind"] not in kinds or r["test"] == "matrix":
            continue
        test = " ".join(r["test"].split())
        if r["kind"] == "handshake":
            test += f" ({float(r['ops_per_hs']):.0f} ops)"
            value, unit = f"{float(r['us_per_hs']):.1f}", "µs/hs"
        else:
            value, unit = r["value"], r["unit"]
        out.append(f"| {r['token']} | {r['kind']} | {test} | {value} | "
                   f"{unit} |")
    return out


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "bench/results.csv"
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["kind"] != "kind"]
    tokens = OrderedDict((r["token"], True) for r in rows
                         if r["test"] == "matrix")
    for token in tokens:
        print(f"### Handshakes, {token}\n")
        print("\n".join(matrix(rows, token)) + "\n")
    print("### Instructions per handshake\n")
    print("\n".join(instructions(rows)) + "\n")
    print("### Two threads over one: rate / CPU per handshake\n")
    print("\n".join(scaling(rows)) + "\n")
    print("### Token operations, scale and flood\n")
    print("\n".join(figures(rows, {"token-op", "scale", "flood"})))
    print("\n".join(figures(rows, {"handshake"})[2:]))


if __name__ == "__main__":
    sys.exit(main())
