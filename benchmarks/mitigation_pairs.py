"""Pileup mitigation judged without a network, on paired events (issue 29 acceptance).

The same hard events (same seed) generated at mu = 0 and at mu > 0 with a mitigation scheme:
prints JSON with the median and resolution (half the 16-84 % width) of HT(mu) / HT(mu = 0), the fraction of
jets above the jet threshold at mu that have no mu = 0 jet within Delta R < 0.2, the same for the raw jets'
HT, and (with tracks) the fraction of events whose L1 vertex is within 1 mm of the true one.

    python benchmarks/mitigation_pairs.py PU0.root PU60.root [--ht-jet-pt 30]
"""

from __future__ import annotations

import argparse
import json

from qtrigger.generate.validation import paired_mitigation_summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("zero_pileup")
    parser.add_argument("with_pileup")
    parser.add_argument("--ht-jet-pt", type=float, default=30.0)
    parser.add_argument("--match-dr", type=float, default=0.2)
    args = parser.parse_args()
    print(json.dumps(paired_mitigation_summary(args.zero_pileup, args.with_pileup, args.ht_jet_pt, args.match_dr),
                     indent=1))


if __name__ == "__main__":
    main()
