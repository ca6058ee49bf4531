"""``cost``: what a deployed stack spent over the last days, and per 1,000 images, from CloudWatch."""

from __future__ import annotations

import argparse
import json
from typing import Any

from inferctl import pricing
from inferctl.cli.common import EXIT_OK, add_target, count, positive, target
from inferctl.console import table
from inferctl.stack.spend import spend as spent


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "cost", help="spend over the last days and per 1,000 images, from CloudWatch metrics and list prices"
    )
    parser.add_argument("--days", type=positive, default=7.0, help="the period, in days back from now (default 7)")
    parser.add_argument("--units", type=count, default=1, help="inference units the model runs with (default 1)")
    parser.add_argument("--format", choices=("table", "json"), default="table", help="table (default) or JSON")
    add_target(parser)
    parser.set_defaults(run=cmd_cost)


def cmd_cost(args: argparse.Namespace) -> int:
    spend = spent(target(args), units=args.units, days=args.days)
    per_k = spend.per_thousand()
    if args.format == "json":
        document = {
            "days": spend.days,
            "images": spend.images,
            "prices_as_of": pricing.PRICES_AS_OF,
            "usd": dict(spend.parts),
            "usd_total": spend.total,
            "usd_per_1000_images": dict(per_k) or None,
        }
        print(json.dumps(document, indent=2))
        return EXIT_OK
    rows = [[name, f"{value:.4f}", f"{per_k[name]:.4f}" if per_k else "-"] for name, value in spend.parts.items()]
    rows.append(["total", f"{spend.total:.4f}", f"{sum(per_k.values()):.4f}" if per_k else "-"])
    print(f"{spend.images:.0f} images in {spend.days:g} days; USD, us-east-1 list prices of {pricing.PRICES_AS_OF}")
    print(table(rows, ["part", "USD", "USD per 1,000 images"]))
    return EXIT_OK
