#!/usr/bin/python3
"""Figures of certified accuracy against radius for a paper, from macer_certify's TSVs.

Reads each TSV (with its full-precision radii from "<tsv>.radii" and its noise level from
"<tsv>.run.json" when they are there) and draws the curves Cohen et al.'s analysis code draws:
approximate certified accuracy (the fraction of images classified correctly with radius >= r)
against r, one curve per file (two for --mode both files: hard and soft), with matplotlib.
The output's extension picks the format: .pdf, .svg, .png (several outputs may be given).

  scripts/plot_certify.py runs/a.tsv runs/b.tsv --label MACER --label Cohen \\
      --title "CIFAR-10, sigma = 0.25" -o fig.pdf -o fig.png

Needs Debian's python3 (/usr/bin/python3, the first line) with python3-matplotlib (scripts/setup.sh
installs it); under another python3 (pyenv, conda, a venv) that lacks it the error names /usr/bin/python3.
"""
import argparse
import csv
import json
import os
import sys

from python_needs import need


class PlotError(Exception):
    pass


def read_rows(path):
    """The (radius, correct) pairs of a TSV, per certificate ("hard", "soft" or the one)."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
    except OSError as e:
        raise PlotError("%s: cannot read: %s" % (path, e.strerror))
    if rows and "radius" not in rows[0] and "predict" in rows[0]:
        return None  # a PREDICT file: no radii to draw (macer_certify --summarize --plot leaves it out too)
    if not rows or "radius" not in rows[0]:
        raise PlotError("%s: not a certification TSV with a radius column" % path)
    full = {}
    radii_path = path + ".radii"
    if os.path.exists(radii_path):  # every digit, as macer_certify's summaries use
        with open(radii_path, newline="") as f:
            for r in csv.DictReader(f, delimiter="\t"):
                full[r["idx"]] = r
    curves = {}
    for kind, radius_col, correct_col in (("hard", "radius", "correct"), ("soft", "soft_radius", "soft_correct")):
        if radius_col not in rows[0]:
            continue
        pts = []
        for i, r in enumerate(rows):
            try:
                radius = float(full[r["idx"]][radius_col]) if r["idx"] in full else float(r[radius_col])
                pts.append((radius, r[correct_col] == "1"))
            except (KeyError, ValueError):
                raise PlotError("%s: row %d cannot be read" % (path, i + 2))
        curves[kind] = pts
    return curves


def recorded_sigma(path):
    try:
        with open(path + ".run.json") as f:
            return float(json.load(f)["sigma"])
    except (OSError, KeyError, ValueError):
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tsv", nargs="+", help="macer_certify --output files")
    ap.add_argument("-o", "--output", action="append", required=True, help="figure file: .pdf, .svg or .png (repeatable)")
    ap.add_argument("--label", action="append", default=[], help="legend name of each TSV, in order (default: file name and sigma)")
    ap.add_argument("--title", default="", help="figure title")
    ap.add_argument("--radius-max", type=float, default=None, help="x axis limit (default: the largest radius)")
    ap.add_argument("--width", type=float, default=5.0, help="inches (default 5)")
    ap.add_argument("--height", type=float, default=3.5, help="inches (default 3.5)")
    ap.add_argument("--dpi", type=float, default=200, help="PNG resolution (default 200)")
    args = ap.parse_args()
    try:
        if args.label and len(args.label) != len(args.tsv):
            raise PlotError("%d --label for %d files: give one per file, in order" % (len(args.label), len(args.tsv)))
        for out in args.output:
            if os.path.splitext(out)[1].lower() not in (".pdf", ".svg", ".png"):
                raise PlotError("--output %s: the extension must be .pdf, .svg or .png" % out)
        missing = need(["matplotlib"], "to draw %s" % ", ".join(args.output))
        if missing:
            raise PlotError(missing)
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        series = []
        for i, path in enumerate(args.tsv):
            curves = read_rows(path)
            if curves is None:
                print("note: %s is PREDICT (no radii): left out of the plot" % path, file=sys.stderr)
                continue
            sigma = recorded_sigma(path)
            name = args.label[i] if args.label else os.path.splitext(os.path.basename(path))[0] + (
                " ($\\sigma$ = %g)" % sigma if sigma is not None else "")
            for kind, pts in curves.items():
                series.append((name + (" (%s)" % kind if len(curves) > 1 else ""), pts))
        if not series:
            raise PlotError("nothing to draw: PREDICT files have no radii (give certification TSVs)")
        top = max([r for _, pts in series for r, ok in pts if ok] + [0.0])
        xmax = args.radius_max if args.radius_max is not None else max(top * 1.05, 0.25)
        steps = 400
        xs = [xmax * j / steps for j in range(steps + 1)]
        fig, ax = plt.subplots(figsize=(args.width, args.height))
        for name, pts in series:
            n = len(pts)
            ys = [sum(1 for r, ok in pts if ok and r >= x) / n for x in xs]
            ax.plot(xs, ys, label=name, drawstyle="steps-post")
        ax.set_xlabel("radius ($\\ell_2$)")
        ax.set_ylabel("certified accuracy")
        ax.set_xlim(0, xmax)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        if args.title:
            ax.set_title(args.title)
        ax.legend(loc="upper right", frameon=False)
        fig.tight_layout()
        for out in args.output:
            tmp = out + ".tmp" + os.path.splitext(out)[1]
            fig.savefig(tmp, dpi=args.dpi)  # whole or not at all: a temporary file, then renamed
            os.replace(tmp, out)
            print("figure: %s" % out)
    except PlotError as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
