#!/usr/bin/env python3
"""Which swings a lower sample rate reads wrong: two contact dumps of the same seeds, paired.

At a fixed `--rate-hz` the independent simulator draws the same sessions for a seed whatever
the rate (its rate schedule draws no random numbers then), so a swing played at 100 Hz is the
same swing at 200 Hz. This pairs the per-swing CSVs that `shuttlegate-tools eval --simulator
biomech` appends to the file named by SHUTTLEGATE_CONTACT_DUMP (columns:
crates/shuttlegate-tools/src/biomech_eval/contact.rs, `dump_row`) on class, mount, true shaft
elevation and true contact time, and counts, per group of the *first* dump's reading (mount,
gyro range, clipped / wrapped flag, contact timing, class), the swings whose height each run
reads right, and how many only the second run reads right ("lost" in the first) or only the
first ("won"). `--list` prints the changed swings with both runs' contact offsets, elevations
and flags.

A diagnostic for docs/analysis-history.md (height25), not part of the analyser or of CI. Use
tuning seeds only (below 1000):

    for r in 100 200; do
        SHUTTLEGATE_CONTACT_DUMP=/tmp/dump-$r.csv shuttlegate-tools eval --simulator biomech \\
            --rate-hz $r --first-seed 0 --seeds 50 --duration-s 120 > /dev/null
    done
    python3 crates/shuttlegate-tools/scripts/pair_rates.py /tmp/dump-100.csv /tmp/dump-200.csv

Two dumps of the same rate from two builds pair the same way (what a change moved).
"""
import argparse
import collections
import csv

# Column indices in `dump_row`.
CLASS, MOUNT, T_ELEV, M_ELEV, OFFSET_MS, FLAGS, T_HEIGHT, M_HEIGHT = 0, 1, 3, 10, 23, 24, 25, 26
GYRO_FS, IMPACT, T_IMPACT = 27, 31, 32
ON_TIME_MS = 10.0


def load(path):
    """Rows by (mount, class, true elevation, true contact time)."""
    rows = {}
    with open(path, newline="") as f:
        for r in csv.reader(f):
            if len(r) <= T_IMPACT:
                continue
            true_contact = float(r[T_IMPACT]) - float(r[OFFSET_MS])
            rows[(r[MOUNT], r[CLASS], round(float(r[T_ELEV]), 3), round(true_contact))] = r
    return rows


def right(r):
    return r[T_HEIGHT] != "-" and r[T_HEIGHT] == r[M_HEIGHT]


def groups(r):
    flags = r[FLAGS].split(";")
    flag = "clipped" if "clipped" in flags else "wrapped" if "wrapped" in flags else "clean"
    off = float(r[OFFSET_MS])
    timing = "on time" if abs(off) <= ON_TIME_MS else "early" if off < 0 else "late"
    return [
        "all",
        f"mount {r[MOUNT]}",
        f"gyro {r[GYRO_FS]} dps {flag}",
        f"mount {r[MOUNT]} {flag}",
        f"contact {timing} (first run)",
        f"impact found {r[IMPACT]} (first run)",
        f"class {r[CLASS]}",
    ]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("first", help="contact dump of the first run (e.g. 100 Hz)")
    p.add_argument("second", help="contact dump of the second run (e.g. 200 Hz)")
    p.add_argument("--list", action="store_true", help="print the swings whose height changed")
    args = p.parse_args()
    a, b = load(args.first), load(args.second)
    keys = [k for k in a if k in b and a[k][T_HEIGHT] != "-"]
    print(f"paired {len(keys)} swings with a true height ({len(a)} and {len(b)} rows)")
    tally = collections.defaultdict(collections.Counter)
    for k in keys:
        ra, rb = a[k], b[k]
        for g in groups(ra):
            t = tally[g]
            t["n"] += 1
            t["first"] += right(ra)
            t["second"] += right(rb)
            t["lost"] += right(rb) and not right(ra)
            t["won"] += right(ra) and not right(rb)
    print(f"{'group':<40} {'n':>5} {'first':>6} {'second':>6} {'lost':>5} {'won':>5}")
    for g in sorted(tally):
        t = tally[g]
        print(f"{g:<40} {t['n']:>5} {t['first']:>6} {t['second']:>6} {t['lost']:>5} {t['won']:>5}")
    if args.list:
        for k in keys:
            ra, rb = a[k], b[k]
            if right(ra) != right(rb):
                print(
                    f"{'lost' if right(rb) else 'won '} {ra[CLASS]:<6} {ra[MOUNT]:<20} "
                    f"offset {float(ra[OFFSET_MS]):+6.1f} / {float(rb[OFFSET_MS]):+6.1f} ms  "
                    f"elevation true {float(ra[T_ELEV]):+6.1f} read {float(ra[M_ELEV]):+6.1f} / "
                    f"{float(rb[M_ELEV]):+6.1f}  impact {ra[IMPACT]} / {rb[IMPACT]}  "
                    f"flags {ra[FLAGS] or '-'} / {rb[FLAGS] or '-'}"
                )


if __name__ == "__main__":
    main()
