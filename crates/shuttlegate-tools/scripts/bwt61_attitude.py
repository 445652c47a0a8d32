#!/usr/bin/env python3
"""Diagnostic (height24): the analyser's shaft elevation at each contact on the ChoongGao
WitMotion BWT61 armband set, beside the attitude the sensor itself reports there.

The BWT61's CSVs carry, besides the raw accelerometer and gyro the analyser reads, the
sensor's own fused Euler angles (AngleX, AngleY, AngleZ). The analyser never reads them (a
venue's firmware sends raw IMU only); here they are a candidate truth for the attitude at
contact. Before they can be one, two things are checked against the raw gyro, which both
the analyser and the sensor's own filter integrate:

1. the Euler convention: every sequence and sign is tried, and the one whose row-to-row
   rotation matches the gyro's turn over the next row is kept (intrinsic Z-Y-X, yaw
   AngleZ, pitch AngleY, roll AngleX, all as signed; the node's x then points up at
   asin(R[2,0]) = -AngleY);
2. whether the fused attitude stays a rigid rotation the gyro explains: per row, the
   angle between the fused step and the gyro's step (|omega| * 10 ms, the sensor's 100 Hz
   output; rows whose gyro sits at its rail are left out). A step more than 20 deg off the
   gyro's is a jump of the sensor's own filter (its roll, AngleX, resets when the swing's
   load, several g, is taken for gravity), after which its pitch is integrated about the
   wrong axes.

Per swing it prints the analyser's elevation (from `SHUTTLEGATE_HEIGHT_TRACE`), the fused x
elevation at the same row, whether the fused attitude jumped between the last calm row
before the swing and contact, and the gyro integrated from the fused attitude at that calm
row (the sensor's own anchor, carried by the raw gyro: no jump, but blind through the rail);
then per class the medians and how many swings each reading puts overhead (> 15 deg).

Usage:
  SHUTTLEGATE_HEIGHT_TRACE=1 shuttlegate-tools eval --recordings --in-process \\
      --source badminton_witmotion_choonggao=DIR > TRACE.txt
  python3 bwt61_attitude.py TRACE.txt [--convention]
"""
import csv
import itertools
import re
import sys

import numpy as np
from scipy.spatial.transform import Rotation as Rot

ROW_MS = 10.0  # the reader times rows at 100 Hz (the stamps are Bluetooth arrival times)
RAIL_DPS = 1990.0
JUMP_DEG = 20.0
CALM_DPS = 30.0
OVERHEAD_DEG = 15.0


def load(path):
    """Rows of (ax, ay, az, wx, wy, wz, AngleX, AngleY, AngleZ) as the reader takes them."""
    rows = []
    with open(path, encoding="utf-8", errors="replace") as f:
        r = csv.reader(f)
        next(r)
        for row in r:
            try:
                v = [float(x) for x in row[2:11]]
            except ValueError:
                continue
            if len(v) == 9:
                rows.append(v)
    return np.array(rows)


def fused(d, seq="ZYX", order=(8, 7, 6), signs=(1, 1, 1)):
    return Rot.from_euler(seq, d[:, list(order)] * np.array(signs), degrees=True)


def step_mismatch_deg(d, rf):
    """Per row i -> i+1: the fused step against the gyro's (the sensor's angles lead its
    gyro by a row: the step to row i+1 is row i+1's rate)."""
    step = rf[:-1].inv() * rf[1:]
    gyro = Rot.from_rotvec(np.radians(d[1:, 3:6]) * ROW_MS / 1000.0)
    off = np.degrees((step.inv() * gyro).magnitude())
    clean = ~(np.abs(d[1:, 3:6]) >= RAIL_DPS).any(axis=1)
    return off, clean


def x_up_deg(r):
    return np.degrees(np.arcsin(np.clip(r.apply([1.0, 0.0, 0.0])[..., 2], -1, 1)))


def convention(paths):
    """Share of clean rows whose fused step is > 20 deg off the gyro's, per convention."""
    data = [load(p) for p in paths[::5]]
    found = []
    for seq in ["xyz", "zyx", "xzy", "yxz", "yzx", "zxy"]:
        for s in (seq, seq.upper()):
            order = [6 + "xyz".index(c) for c in seq]
            for signs in itertools.product([1, -1], repeat=3):
                bad = n = 0
                for d in data:
                    off, clean = step_mismatch_deg(d, fused(d, s, order, signs))
                    bad += (off[clean] > JUMP_DEG).sum()
                    n += clean.sum()
                found.append((bad / n, s, signs))
    found.sort()
    for share, s, signs in found[:4]:
        print(f"convention {s} signs {signs}: {100 * share:.1f} % of clean rows jump")


def main():
    trace = sys.argv[1]
    lines = [l.split() for l in open(trace) if l.startswith("height ")]
    if "--convention" in sys.argv:
        convention(sorted({l[1] for l in lines}))
    per_class = {}
    for l in lines:
        path, t, elev = l[1], float(l[3]), float(l[5])
        cls = path.rstrip("/").split("/")[-2]
        d = load(path)
        rf = fused(d)
        w = np.linalg.norm(d[:, 3:6], axis=1)
        c_row = min(int(round(t / ROW_MS)), len(d) - 1)
        calm = [i for i in range(c_row) if w[i] < CALM_DPS]
        a = calm[-1] if calm else 0
        off, clean = step_mismatch_deg(d, rf)
        jumped = bool(((off > JUMP_DEG) & clean)[a:c_row].any())
        carried = rf[a]
        for i in range(a, c_row):
            carried = carried * Rot.from_rotvec(np.radians(d[i + 1, 3:6]) * ROW_MS / 1000.0)
        railed = bool((np.abs(d[a : c_row + 1, 3:6]) >= RAIL_DPS).any())
        row = (elev, float(x_up_deg(rf[c_row])), float(x_up_deg(carried)), jumped, railed)
        per_class.setdefault(cls, []).append(row)
        print(
            f"swing {cls} {path.split('/')[-1]} contact row {c_row} analyser {elev:+.0f} "
            f"fused {row[1]:+.0f} ({'jumped' if jumped else 'no jump'} since row {a}) "
            f"gyro from fused anchor {row[2]:+.0f}{' railed' if railed else ''}"
        )
    for cls, rows in sorted(per_class.items()):
        r = np.array(rows, dtype=float)
        up = lambda col: int((r[:, col] > OVERHEAD_DEG).sum())
        print(
            f"{cls}: {len(r)} swings, fused attitude jumped before contact on {int(r[:, 3].sum())}, "
            f"gyro at its rail on {int(r[:, 4].sum())}; x up at contact, median deg "
            f"(swings > {OVERHEAD_DEG:.0f} deg): analyser {np.nanmedian(r[:, 0]):+.0f} ({up(0)}), "
            f"fused {np.nanmedian(r[:, 1]):+.0f} ({up(1)}), gyro from the fused anchor "
            f"{np.nanmedian(r[:, 2]):+.0f} ({up(2)})"
        )
        nj = r[r[:, 3] == 0]
        if len(nj):
            print(
                f"   without a jump ({len(nj)}): analyser {np.nanmedian(nj[:, 0]):+.0f}, fused "
                f"{np.nanmedian(nj[:, 1]):+.0f}, gyro from the fused anchor {np.nanmedian(nj[:, 2]):+.0f}"
            )


if __name__ == "__main__":
    main()
