"""``thresholds``: show what is in force and where it comes from, change it safely, and try proposals on the
stored results (what-if) without calling the model."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from inferctl.cli.common import EXIT_OK, add_engine, add_target, source, target
from inferctl.console import table
from inferctl.evaluation import whatif
from inferctl.stack import configuration, questions, uploads
from inferctl.stack.configuration import CDK_JSON
from inferctl.stack.errors import ConfigError
from inferctl.stack.target import Target


def register(commands: Any) -> None:
    thresholds = commands.add_parser("thresholds", help="show, change (safely) or try (what-if) thresholds")
    verbs = thresholds.add_subparsers(dest="verb", required=True, metavar="VERB")

    show = verbs.add_parser("show", help="the thresholds in force, where each comes from, and any drift")
    show.add_argument("--cdk-json", type=Path, default=CDK_JSON, help="the cdk.json of the next deploy")
    show.add_argument("--format", choices=("table", "json"), default="table", help="table (default) or JSON")
    add_target(show)
    show.set_defaults(run=cmd_show)

    change = verbs.add_parser("set", help="change thresholds on the running function (merged, guarded)")
    _add_values(change)
    change.add_argument("--dry-run", action="store_true", help="print the change, send nothing")
    change.add_argument(
        "--write-context",
        type=_given_path,
        nargs="?",
        const=CDK_JSON,
        metavar="CDK_JSON",
        help="also write the values into cdk.json so that the next deploy keeps them (with --embedded: only into "
        "a file named here)",
    )
    add_target(change)
    change.set_defaults(run=cmd_set)

    trial = verbs.add_parser("what-if", help="what proposed thresholds would keep, from the stored results")
    _add_values(trial)
    trial.add_argument("--prefix", help="key prefix of the results (default: the input prefix)")
    trial.add_argument("--format", choices=("table", "json"), default="table")
    add_engine(trial)
    add_target(trial)
    trial.set_defaults(run=cmd_what_if)


class _GivenPath(type(Path())):  # type: ignore[misc]
    """A path the user typed (not the option's default)."""


def _given_path(text: str) -> Path:
    return _GivenPath(text)


def _add_values(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--min-confidence", metavar="PERCENT", help="the global threshold")
    parser.add_argument(
        "--label", action="append", default=[], metavar="NAME=PERCENT", help="a per-label threshold (repeatable)"
    )
    parser.add_argument("--clear-label", action="append", default=[], metavar="NAME", help="remove a label's override")
    parser.add_argument("--candidate-floor", metavar="PERCENT", help="keep candidates down to this confidence")
    parser.add_argument(
        "--below-one",
        action="store_true",
        help="a value between 0 and 1 means that percentage (0.7 = 0.7 %%), not a fraction of 100 to convert",
    )


def _percent(option: str, value: str, below_one: bool) -> str:
    """Thresholds are percentages; 0.7 is far more often a fraction meant as 70 than 0.7 %% (evaluate's
    --min-precision is a fraction): refused with the fix, unless --below-one says it is meant."""
    try:
        number = float(value)
    except ValueError:
        return value  # the rules say what is wrong with it
    if 0 < number < 1 and not below_one:
        raise ConfigError(
            option,
            f"{value} is a percentage below 1 %: did you mean {number * 100:g}? Thresholds are percentages "
            "(0-100); add --below-one if you do mean it",
        )
    return value


def changes_of(args: argparse.Namespace) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    below_one = bool(getattr(args, "below_one", False))
    if args.min_confidence is not None:
        changes["min_confidence"] = _percent("--min-confidence", args.min_confidence, below_one)
    if args.candidate_floor is not None:
        changes["candidate_floor"] = _percent("--candidate-floor", args.candidate_floor, below_one)
    labels: dict[str, Any] = {}
    for pair in args.label:
        name, separator, value = pair.partition("=")
        if not separator or not name:
            raise ConfigError("--label", f"expected NAME=PERCENT, got {pair!r}")
        labels[name] = _percent(f"--label {name}", value, below_one)
    labels.update(dict.fromkeys(args.clear_label))
    if labels:
        changes["label_thresholds"] = labels
    if not changes:
        raise ConfigError("thresholds", "nothing to change: give --min-confidence, --label or --candidate-floor")
    return changes


def cmd_show(args: argparse.Namespace) -> int:
    if not args.cdk_json.is_file():
        raise FileNotFoundError(2, "No such file or directory", str(args.cdk_json))
    rows = configuration.show(target(args), args.cdk_json)
    if args.format == "json":
        document = [
            {
                "variable": row.variable.env,
                "context_key": row.variable.context,
                "live": row.live,
                "deployed": row.deployed,
                "cdk_json": row.next_deploy,
                "changed_since_deploy": row.drifted,
                "reverts_on_deploy": row.reverts_on_deploy,
            }
            for row in rows
        ]
        print(json.dumps(document, indent=2))
        return EXIT_OK
    lines = []
    for row in rows:
        notes = []
        if row.drifted:
            notes.append("changed on the function since the deploy")
        if row.reverts_on_deploy:
            notes.append("the next deploy sets it back")
        lines.append(
            (
                row.variable.env,
                row.variable.context,
                row.live,
                row.deployed or "?",
                row.next_deploy or "?",
                "; ".join(notes),
            )
        )
    print(table(lines, ("variable", "context key", "live", "deployed", "cdk.json", "notes"), max_width=40))
    return EXIT_OK


def warn_unknown_labels(stack: Target, names: list[str], environment: dict[str, str]) -> None:
    """A threshold for a label the model never produced changes nothing: most likely a typo. Said, not refused
    (a new model version may bring the label)."""
    if not names:
        return
    known = configuration.known_labels(stack, environment)
    if known is None:
        return
    labels, source_of = known
    unknown = sorted(name for name in names if name not in labels)
    if unknown:
        print(
            f"warning: the model never produced {', '.join(unknown)} (per {source_of}: {', '.join(sorted(labels))}); "
            "a threshold for it changes nothing until it does",
            file=sys.stderr,
        )


def _label_names(args: argparse.Namespace) -> list[str]:
    return [pair.partition("=")[0] for pair in args.label if "=" in pair]


def cmd_set(args: argparse.Namespace) -> int:
    stack = target(args)
    changes = changes_of(args)
    if args.write_context is not None and args.embedded and not isinstance(args.write_context, _GivenPath):
        raise ConfigError(
            "--write-context",
            f"with --embedded it would edit this repository's {CDK_JSON}: name the file to write "
            f"(--write-context {CDK_JSON}) if you mean it",
        )
    warn_unknown_labels(stack, _label_names(args), configuration.read_live(stack).environment)
    applied = configuration.apply(
        stack,
        changes,
        dry_run=args.dry_run,
        write_context=args.write_context,
        progress=lambda message: print(message, file=sys.stderr),
    )
    if not applied.changes:
        print("no change: the function already has these values", file=sys.stderr)
        return EXIT_OK
    print(table([(name, old, new) for name, (old, new) in applied.changes.items()], ("variable", "before", "after")))
    if applied.dry_run:
        print("\ndry run: nothing was sent", file=sys.stderr)
    elif applied.wrote_context:
        print(f"\napplied (revision {applied.revision_id}); written to {applied.wrote_context}", file=sys.stderr)
    else:
        reverting = _reverting(stack, set(applied.changes))
        if reverting:
            print(
                f"\napplied (revision {applied.revision_id}). The next `cdk deploy` sets {', '.join(reverting)} back "
                "to cdk.json's values: add --write-context to keep them",
                file=sys.stderr,
            )
        else:
            print(f"\napplied (revision {applied.revision_id}); cdk.json has the same values", file=sys.stderr)
    return EXIT_OK


def _reverting(stack: Target, variables: set[str]) -> list[str]:
    """Of the changed variables, those whose value in cdk.json (the next deploy's) differs from the live one."""
    if not CDK_JSON.is_file():
        return sorted(variables)
    return sorted(
        row.variable.env
        for row in configuration.show(stack, CDK_JSON)
        if row.variable.env in variables and row.reverts_on_deploy
    )


def cmd_what_if(args: argparse.Namespace) -> int:
    stack = target(args)
    changes = changes_of(args)
    environment = configuration.read_live(stack).environment
    warn_unknown_labels(stack, _label_names(args), environment)
    proposed = configuration.thresholds_after(environment, changes)
    chosen = source(args, stack, args.prefix)
    if chosen.table is None:
        report = whatif.what_if(uploads.iter_results(stack, args.prefix), proposed)
    else:
        report = questions.what_if(chosen.table, args.prefix or stack.input_prefix, proposed)
    if args.format == "json":
        print(json.dumps(report.as_dict(), indent=2))
        return EXIT_OK
    labels = report.as_dict()["labels"]
    print(table([(name, n["now"], n["proposed"]) for name, n in labels.items()], ("label", "accepted now", "proposed")))
    print(f"\n{len(report.changes)} of {report.images} images change:")
    for change in report.changes[:50]:
        parts = [f"adds {', '.join(change.added)}"] if change.added else []
        parts += [f"drops {', '.join(change.removed)}"] if change.removed else []
        print(f"  {change.key}: {'; '.join(parts)}")
    if len(report.changes) > 50:
        print(f"  ... and {len(report.changes) - 50} more (--format json lists every one)")
    if report.below_floor:
        print(
            f"warning: {len(report.below_floor)} results were kept with a higher candidate floor than a proposed "
            "threshold: labels between the two are unknown",
            file=sys.stderr,
        )
    return EXIT_OK
