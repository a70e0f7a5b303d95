#!/usr/bin/env python3
"""Draws bench/results.csv as an SVG bar chart: microseconds per handshake
(wall time per thread), the baseline against kpsa on the server and on
both ends, for every protocol and thread count; one panel per token
configuration. Python standard library only.

usage: bench/plot.py RESULTS.csv OUT.svg
"""
import csv
import math
import sys
from xml.sax.saxutils import escape

SIDES = [
    ("none", "baseline (raw key)", "#9e9e9e"),
    ("server", "kpsa on the server", "#1f77b4"),
    ("both", "kpsa on both ends", "#ff7f0e"),
]
PROTOCOLS = ["tls1.2-cbc", "tls1.2-ccm8", "dtls1.2-ccm8", "tls1.3-dhe"]

BAR, GAP, GROUP_GAP = 14, 2, 18
LEFT, RIGHT, TOP, PANEL_H, PANEL_GAP = 64, 16, 56, 220, 70


def latest_rows(path):
    """The matrix rows of the newest run of each token configuration."""
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f)
                if r["kind"] == "handshake" and r["test"] == "matrix"]
    newest = {}
    for r in rows:
        newest[r["token"]] = max(newest.get(r["token"], ""), r["date"])
    return [r for r in rows if r["date"] == newest[r["token"]]]


def nice_ceiling(v):
    """A round axis maximum at or above v."""
    if v <= 0:
        return 1.0
    mag = 10 ** math.floor(math.log10(v))
    for step in (1, 2, 2.5, 5, 10):
        if step * mag >= v:
            return step * mag
    return 10 * mag


def groups_of(rows):
    """(protocol, threads) pairs present, in a fixed order."""
    present = {(r["protocol"], int(r["threads"])) for r in rows}
    order = [(p, t) for t in (1, 2, 4, 8) for p in PROTOCOLS]
    return [g for g in order if g in present] + sorted(present - set(order))


def panel(out, rows, token, y0, width):
    """One token configuration's bars; returns nothing, appends to out."""
    mine = [r for r in rows if r["token"] == token]
    value = {(r["protocol"], int(r["threads"]), r["kpsa"]):
             float(r["us_per_hs"]) for r in mine if r["us_per_hs"]}
    groups = groups_of(mine)
    top = nice_ceiling(max(value.values(), default=1.0))
    scale = PANEL_H / top
    base = y0 + PANEL_H
    date = mine[0]["date"] if mine else ""

    out.append(f'<text x="{LEFT}" y="{y0 - 14}" class="h">'
               f'{escape(token)}: us per handshake, wall time per thread '
               f'({escape(date)})</text>')
    for i in range(6):
        v = top * i / 5
        y = base - v * scale
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{width - RIGHT}" '
                   f'y2="{y:.1f}" class="grid"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" '
                   f'text-anchor="end">{v:g}</text>')
    x = LEFT + GROUP_GAP / 2
    for proto, threads in groups:
        start = x
        for side, _, colour in SIDES:
            v = value.get((proto, threads, side))
            if v is not None:
                h = v * scale
                out.append(f'<rect x="{x:.1f}" y="{base - h:.1f}" '
                           f'width="{BAR}" height="{h:.1f}" '
                           f'fill="{colour}"><title>{escape(proto)}, '
                           f'{threads} thread(s), kpsa {side}: {v:.1f} us'
                           f'</title></rect>')
                out.append(f'<text x="{x + BAR / 2:.1f}" y="{base - h - 3:.1f}"'
                           f' text-anchor="middle" class="v">{v:.0f}</text>')
            x += BAR + GAP
        mid = (start + x - GAP) / 2
        out.append(f'<text x="{mid:.1f}" y="{base + 14}" '
                   f'text-anchor="middle">{escape(proto)}</text>')
        out.append(f'<text x="{mid:.1f}" y="{base + 27}" '
                   f'text-anchor="middle">{threads} thr</text>')
        x += GROUP_GAP
    out.append(f'<line x1="{LEFT}" y1="{base}" x2="{width - RIGHT}" '
               f'y2="{base}" class="axis"/>')


def chart(rows):
    tokens = sorted({r["token"] for r in rows})
    n_groups = max((len(groups_of([r for r in rows if r["token"] == t]))
                    for t in tokens), default=1)
    width = int(LEFT + RIGHT + n_groups * (len(SIDES) * (BAR + GAP)
                                           + GROUP_GAP))
    width = max(width, 560)
    height = TOP + len(tokens) * (PANEL_H + PANEL_GAP) + 10
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" '
           f'font-family="sans-serif" font-size="11">',
           '<style>.h{font-size:13px;font-weight:bold}.v{font-size:9px}'
           '.grid{stroke:#e0e0e0}.axis{stroke:#333}</style>',
           f'<rect width="{width}" height="{height}" fill="white"/>']
    lx = LEFT
    for _, label, colour in SIDES:
        out.append(f'<rect x="{lx}" y="12" width="12" height="12" '
                   f'fill="{colour}"/>')
        out.append(f'<text x="{lx + 16}" y="22">{escape(label)}</text>')
        lx += 30 + 7 * len(label)
    y = TOP + 20
    for token in tokens:
        panel(out, rows, token, y, width)
        y += PANEL_H + PANEL_GAP
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main(argv):
    if len(argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    rows = latest_rows(argv[1])
    if not rows:
        sys.stderr.write(f"plot.py: {argv[1]}: no handshake rows\n")
        return 1
    with open(argv[2], "w") as f:
        f.write(chart(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
