"""`python -m cost cdk.out`: print the idle monthly cost of a synthesized foundation (used by `make cost`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cost.prices import PRICES_DIR, PriceError
from cost.report import as_json, estimate_assembly, render_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cost", description=__doc__)
    parser.add_argument(
        "outdir", type=Path, nargs="?", default=Path("cdk.out"), help="cloud assembly (cdk.out)"
    )
    parser.add_argument(
        "--region", help="price table to use (default: the assembly's region, else us-east-1)"
    )
    parser.add_argument(
        "--prices", type=Path, default=PRICES_DIR, help="directory of <region>.json price tables"
    )
    parser.add_argument("--details", action="store_true", help="list every priced resource")
    parser.add_argument("--json", action="store_true", help="print the estimate as JSON")
    args = parser.parse_args(argv)
    try:
        estimate = estimate_assembly(args.outdir, args.region, args.prices)
    except (FileNotFoundError, PriceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(as_json(estimate), indent=2))
    else:
        print(render_table(estimate, details=args.details))
    return 0


if __name__ == "__main__":
    sys.exit(main())
