#!/usr/bin/env python3
"""Diagnostic (det23): the attitude and reach of each racket detection on the MikaPower
table-tennis set, by class, to see whether the rest sessions' false swings (the arm swinging
while walking) differ from the strokes in what the node's orientation did.

Reads the per-detection lines of `SHUTTLEGATE_SWING_TRACE=1 shuttlegate-tools eval
--recordings --in-process … --source tabletennis_mikapower=<dir>` (file, t from the file's
first sample) and, for each, the Apple Watch's own CoreMotion columns of that file over
±400 ms around the detection: the fused gravity vector (motionGravity, device frame), the
rotation rate and the user acceleration. These columns are the watch's, not the analyser's
(the analyser reads only the raw accelerometer and gyro): the figures say what separates
the bursts, not what the analyser could read today.

Per class, the 10th/50th/90th percentiles of: peak |omega| (deg/s); gravity's x, y, z at the
peak (the watch's x runs along the forearm); the reach |a_user|/omega^2 (m, the median over
the samples at at least half the peak: ~0.6 m for a pendulum about the shoulder, shorter for
a turn about the elbow or wrist); how far gravity's direction strayed from where it started
(excursion, deg) and how far it ended from there (return, deg). Then how many detections of
each class fall in a box of forearm tilt, reach and excursion.

Usage: python3 rest_orientation.py TRACE.txt
"""
import collections
import csv
import itertools
import math
import re
import sys

import numpy as np

HALF_WINDOW_MS = 400.0
G = 9.81


def load(path, cache={}):
    if path not in cache:
        rows = []
        with open(path, newline="") as f:
            r = csv.reader(f, delimiter="|")
            ix = {h: i for i, h in enumerate(next(r))}
            for row in r:
                try:
                    t = float(row[ix["motionTimestamp_sinceReboot(s)"]])
                    w = [float(row[ix[f"motionRotationRate{c}(rad/s)"]]) for c in "XYZ"]
                    g = [float(row[ix[f"motionGravity{c}(G)"]]) for c in "XYZ"]
                    u = [float(row[ix[f"motionUserAcceleration{c}(G)"]]) for c in "XYZ"]
                except (ValueError, IndexError, KeyError):
                    continue  # an accelerometer-only row
                rows.append((t * 1000.0, *w, *g, *u))
        a = np.array(rows)
        cache[path] = a[np.argsort(a[:, 0])]
    return cache[path]


def angle_deg(a, b):
    c = np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b)
    return math.degrees(math.acos(max(-1.0, min(1.0, c))))


def figures(a, t):
    tt = a[:, 0] - a[0, 0]
    win = (tt >= t - HALF_WINDOW_MS) & (tt <= t + HALF_WINDOW_MS)
    if win.sum() < 10:
        return None
    w, g, u = a[win, 1:4], a[win, 4:7], a[win, 7:10]
    wn = np.linalg.norm(w, axis=1)
    k = int(np.argmax(wn))
    half = np.where(wn >= wn[k] / 2)[0]
    reach = np.median(np.linalg.norm(u[half], axis=1) * G / np.maximum(wn[half] ** 2, 1e-6))
    excursion = max(angle_deg(g[0], gi) for gi in g)
    return [math.degrees(wn[k]), *g[k], reach, angle_deg(g[0], g[-1]), excursion]


NAMES = ["peak", "gx", "gy", "gz", "reach_m", "return", "excursion"]


def main(trace):
    by_class = collections.defaultdict(list)
    for line in open(trace):
        m = re.match(r"swing (.*?) t (\S+) after", line)
        if not m or "MikaPower" not in m.group(1):
            continue
        path, t = m.group(1), float(m.group(2))
        cls = path.split("/files/")[1].split("/")[0]
        if cls == "rest" and "2021-03-02_00_20_40" in path:
            cls = "rest-walking"
        f = figures(load(path), t)
        if f:
            by_class[cls].append(f)
    for cls, v in sorted(by_class.items()):
        v = np.array(v)
        cols = "  ".join(
            f"{n} " + "/".join(f"{np.percentile(v[:, i], p):.2f}" for p in (10, 50, 90))
            for i, n in enumerate(NAMES)
        )
        print(f"{cls:18s} n {len(v):4d}  {cols}")
    print()
    for gx, reach, exc in itertools.product([-0.3, -0.4], [0.4, 0.5], [30, 40]):
        counts = []
        for cls, v in sorted(by_class.items()):
            v = np.array(v)
            sel = (v[:, 1] <= gx) & (v[:, 4] >= reach) & (v[:, 6] <= exc)
            counts.append(f"{cls} {sel.sum()}/{len(v)}")
        print(f"gx <= {gx} reach >= {reach} excursion <= {exc}: " + "  ".join(counts))


if __name__ == "__main__":
    main(sys.argv[1])
