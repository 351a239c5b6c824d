#!/usr/bin/env python3
"""Reference values for tests/test_schedules.c: CPT's cyclic precision, as
the official code computes it (GATECH-EIC/CPT, cyclic_adjust_precision):

    cyclic_period = int(total_iters / num_cyclic_period)
    num_bits = np.rint(num_bit_min + 0.5 * (num_bit_max - num_bit_min) *
                       (1 + np.cos(np.pi * ((_iter % cyclic_period) / cyclic_period) + np.pi)))

evaluated here the same way, one Python/numpy scalar per step (np.cos of a
Python float, np.rint: round half to even). Writes
tests/fixtures/cpt_schedule.jsonl, one case per line:

    {"mode": "bits"|"configs", "T", "b_min", "b_max", "n_cycles", "period",
     "bits": [b_0 .. b_{T-1}],          (mode=configs: positions in the BitOPs order)
     "ties": [t, ...],                  steps whose value before rint is exactly k + 0.5 in double
     "alt_differs": [t, ...]}           steps where rint(b_min + 0.5 d (1 - cos(pi (t mod T_c) / T_c)))
                                        -- the formula as printed -- gives another result

mode=configs is the bits formula with b_min = 0, b_max = n - 1 (n
configurations); its n is b_max + 1.

Usage: "$(scripts/ref/python.sh)" scripts/ref/make_schedule_fixtures.py
(any Python with numpy will do: python3 -m venv /tmp/np && /tmp/np/bin/pip install numpy)
"""
import json
import os
import sys

import numpy as np

# (mode, T, b_min, b_max, n_cycles): the default, ties (b_max - b_min odd with
# an even period: x.5 at mid-period; b_max - b_min = 2 with a period divisible
# by 3), a partial last cycle, a period of 1, a constant width, one cycle.
CASES = [
    ("bits", 1000, 4, 8, 32),     # the defaults, period 31
    ("bits", 3200, 3, 8, 32),     # period 100: 5.5 at every mid-period
    ("bits", 600, 4, 6, 2),       # period 300: the two spellings differ at t = 100, 400
    ("bits", 999, 5, 6, 7),       # 5.5 -> 6
    ("bits", 1001, 4, 5, 10),     # 4.5 -> 4, one step of an 11th cycle
    ("bits", 720, 3, 4, 3),       # 3.5 -> 4
    ("bits", 100, 2, 3, 1),       # one cycle, 2.5 -> 2
    ("bits", 960, 2, 8, 4),
    ("bits", 10000, 4, 16, 32),
    ("bits", 1003, 4, 8, 32),     # 992 = 32 x 31: steps 992..1002 start a 33rd cycle
    ("bits", 1200, 2, 16, 10),
    ("bits", 7, 2, 16, 7),        # period 1: always b_min
    ("bits", 50, 8, 8, 5),        # constant
    ("bits", 1500, 6, 9, 5),      # period 300
    ("configs", 12, 0, 5, 2),     # 6 configurations (the trainer test's)
    ("configs", 1000, 0, 3, 32),  # 4
    ("configs", 600, 0, 2, 2),    # 3, as 4..6 shifted: ties
    ("configs", 3200, 0, 5, 32),  # 6, period 100: ties
    ("configs", 333, 0, 6, 3),    # 7
    ("configs", 64, 0, 1, 4),     # 2
]


def official(t, period, lo, hi):
    return lo + 0.5 * (hi - lo) * (1 + np.cos(np.pi * ((t % period) / period) + np.pi))


def as_printed(t, period, lo, hi):
    return lo + 0.5 * (hi - lo) * (1 - np.cos(np.pi * (t % period) / period))


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.path.join(root, "tests", "fixtures", "cpt_schedule.jsonl")
    total_ties = total_alt = steps = 0
    with open(path, "w") as f:
        for mode, T, lo, hi, nc in CASES:
            period = int(T / nc)
            bits, ties, alt = [], [], []
            for t in range(T):
                v = official(t, period, lo, hi)
                b = np.rint(v)
                bits.append(int(b))
                if v - np.floor(v) == 0.5:
                    ties.append(t)
                if np.rint(as_printed(t, period, lo, hi)) != b:
                    alt.append(t)
            f.write(json.dumps({"mode": mode, "T": T, "b_min": lo, "b_max": hi, "n_cycles": nc, "period": period,
                                "bits": bits, "ties": ties, "alt_differs": alt}, separators=(",", ":")) + "\n")
            total_ties += len(ties)
            total_alt += len(alt)
            steps += T
    print(f"{path}: {len(CASES)} cases, {steps} steps, {total_ties} half-way steps, "
          f"{total_alt} steps where 1 - cos(x) rounds otherwise (numpy {np.__version__})", file=sys.stderr)


if __name__ == "__main__":
    main()
