#!/usr/bin/env python3
"""How far could any stroke classifier get on the independent simulator's swings?

Reads the per-swing CSV that `shuttlegate-tools eval --simulator biomech` appends to the file
named by SHUTTLEGATE_CONTACT_DUMP (columns: crates/shuttlegate-tools/src/biomech_eval/contact.rs,
`dump_row`) and cross-validates a gradient-boosted tree ensemble (scikit-learn) on

- the simulator's *true* contact figures (shaft elevation, head-path pitch, racket speed,
  footwork, jump, backswing): what the classes' overlap leaves to any classifier of those
  figures, however well they were measured;
- the analyser's *measured* figures (contact and course): what a learned classifier would make
  of what the analyser reads today, beside the analyser's own rules.

A diagnostic for docs/analysis.md, not part of the analyser (which learns nothing) or of CI.
Use tuning seeds only (below 1000). Needs pandas and scikit-learn:

    SHUTTLEGATE_CONTACT_DUMP=/tmp/dump.csv shuttlegate-tools eval --simulator biomech \\
        --rate-hz 200 --first-seed 0 --seeds 100 --duration-s 120
    OMP_NUM_THREADS=1 python3 crates/shuttlegate-tools/scripts/stroke_ceiling.py /tmp/dump.csv
"""
import argparse

import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import KFold, cross_val_score

COLUMNS = (
    "stroke mount shape t_elev t_pitch t_speed t_foot t_jump t_back found m_elev m_pitch m_rate "
    "m_speed m_ref m_quiet m_dt c_width c_lag c_appr c_rise c_axis conf contact_off_ms flags "
    "t_height m_height gyro_fs overflow rate_hz t_peak_dps impact t_impact"
).split()
TRUE = ["t_elev", "t_pitch", "t_speed", "t_foot", "t_jump", "t_back"]
MEASURED = ["m_elev", "m_pitch", "m_speed", "m_quiet", "m_rate", "m_rel"]
COURSE = ["c_width", "c_lag", "c_appr", "c_rise", "c_axis"]


def learned(rows, features, folds):
    # Contiguous folds: rows come session by session, so a fold holds whole sessions (other
    # players and devices) rather than neighbours of the swings it is scored on.
    model = HistGradientBoostingClassifier(max_iter=200, random_state=0)
    return cross_val_score(model, rows[features], rows.stroke, cv=KFold(folds)).mean()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dump", help="the SHUTTLEGATE_CONTACT_DUMP file")
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    rows = pd.read_csv(args.dump, names=COLUMNS)
    for flag in ["t_foot", "t_jump", "t_back", "m_quiet"]:
        rows[flag] = rows[flag].astype(str).str.lower().eq("true").astype(int)
    rows["m_rel"] = rows.m_speed / rows.m_ref
    for name, part in [("all mounts", rows), ("aligned racket nodes", rows[rows.mount == "aligned"])]:
        rules = (part.found.str.lower() == part.stroke).mean()
        print(f"{name}: {len(part)} matched swings")
        print(f"  the analyser's rules, measured figures      {rules:.3f}")
        print(f"  learned, true contact figures               {learned(part, TRUE, args.folds):.3f}")
        print(f"  learned, measured contact figures           {learned(part, MEASURED, args.folds):.3f}")
        print(f"  learned, measured contact and course        {learned(part, MEASURED + COURSE, args.folds):.3f}")


if __name__ == "__main__":
    main()
