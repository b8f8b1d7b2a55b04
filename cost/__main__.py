"""`python -m cost cdk.out`: the idle monthly cost of a synthesized foundation and the usage cost per 1,000
conversations next to it (used by `make cost`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cost.prices import PRICES_DIR, PriceError
from cost.report import as_json, estimate_assembly, render_table, usage_for_assembly
from cost.usage import DEFAULT_PROFILE, UsageError, render_usage, usage_json


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
    parser.add_argument("--no-usage", action="store_true", help="idle cost only (no usage table)")
    parser.add_argument(
        "--usage-profile",
        type=Path,
        default=DEFAULT_PROFILE,
        help="turn profile JSON (default: cost/profiles/golden.json, measured by `python -m eval run`)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="FIELD=NUMBER",
        help="override a turn-profile field, e.g. --set turns_per_conversation=6 (repeatable)",
    )
    parser.add_argument(
        "--conversations",
        type=int,
        default=10_000,
        help="conversations per month for the idle + usage total (default 10000)",
    )
    args = parser.parse_args(argv)
    if args.conversations < 0:
        print("error: --conversations cannot be negative", file=sys.stderr)
        return 2
    try:
        estimate = estimate_assembly(args.outdir, args.region, args.prices)
    except (FileNotFoundError, PriceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    usage = None
    usage_problem = None
    if not args.no_usage:
        try:
            usage = usage_for_assembly(args.outdir, estimate, args.usage_profile, args.overrides, args.prices)
        except UsageError as exc:  # the user's profile or --set: their input, so exit 2
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except PriceError as exc:  # no usage table for this region: the idle cost still stands
            usage_problem = f"usage cost: NOT ESTIMATED ({exc})"
    if args.json:
        document = as_json(estimate)
        if usage is not None:
            document["usage"] = usage_json(usage, args.conversations)
        elif usage_problem:
            document["usage"] = {"error": usage_problem}
        print(json.dumps(document, indent=2))
    else:
        print(render_table(estimate, details=args.details))
        if usage is not None:
            print(render_usage(usage, estimate.monthly, args.conversations, args.usage_profile))
        elif usage_problem:
            print(usage_problem)
    return 0


if __name__ == "__main__":
    sys.exit(main())
