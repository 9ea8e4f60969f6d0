"""Regenerate assets/half_cheetah_{big,small}.xml from Gymnasium's half_cheetah.xml.

    python scripts/generate_morphology_assets.py [--out assets]

What the variants change is documented in dynshift_envs/morphology.py; a test checks that the
committed files equal this script's output.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dynshift_envs.morphology import write_assets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "assets")
    args = parser.parse_args()
    for path in write_assets(args.out):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
