"""`genfast sweep`: one evaluation per value of a method field (e.g. the timestep weighting), then OOD accuracy and
shape bias against that value, so the paper's mechanism (weighting the low noise levels raises shape bias) is
measured for any model rather than asserted."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from genfast.evaluate import cli as evaluate_cli

EPILOG = """\
Each value runs `genfast evaluate` with --method METHOD:FIELD=VALUE (added to any fields --method already sets)
and the model name <name>-<field>-<value>, into the same --out, so every run resumes as evaluate does and the
raw data sit side by side. Then <out>/sweep-<field>.json holds each value's OOD accuracy and shape bias (shape
bias needs the cue-conflict dataset), and <out>/sweep-<field>.png draws both against the value.
Example: genfast sweep --model /models/sd2 --data model-vs-human/datasets --out runs/sd2 --sweep weight_rate=0,1,3,7,15
"""


def _sweep(text: str) -> tuple[str, tuple[str, ...]]:
    """FIELD=V1,V2,...: a method field and at least two values."""
    field, sep, values = text.partition("=")
    items = tuple(v.strip() for v in values.split(",") if v.strip())
    if not sep or not field.strip().isidentifier() or len(items) < 2:
        raise argparse.ArgumentTypeError(f"expected FIELD=V1,V2,... (a method field and two or more values), got "
                                         f"{text!r}")
    return field.strip(), items


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `sweep` command."""
    p = subparsers.add_parser("sweep", help="evaluate once per value of a method field; OOD accuracy and shape bias "
                                            "against it", description=__doc__.splitlines()[0], epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    evaluate_cli.add_arguments(p)
    p.add_argument("--sweep", required=True, type=_sweep, metavar="FIELD=V1,V2,...",
                   help="the --method field to vary and its values, e.g. weight_rate=0,1,3,7,15")
    p.set_defaults(func=run)


def method_with(method: str, field: str, value: str) -> str:
    """`method` with `field=value` added to (or replacing) its fields."""
    return f"{method}{',' if ':' in method else ':'}{field}={value}"


def run(args: argparse.Namespace) -> int:
    """Every value's evaluation, then the sweep's table, JSON and figure (rank 0)."""
    import torch

    from genfast.distributed import join

    torch.set_num_threads(args.threads)
    world = join(args.timeout)
    field, values = args.sweep
    name = evaluate_cli.config_from(args, world).name
    configs = [evaluate_cli.config_from(args, world, method=method_with(args.method, field, v),
                                        model_name=f"{name}-{field}-{v}") for v in values]  # all valid first
    for config in configs:
        print(f"sweep {field}={config.method.rpartition('=')[2]}: {config.name}", file=sys.stderr)
        evaluate_cli.evaluate_and_report(config, world, args.command_line)
    if world.rank == 0:
        write_sweep(Path(args.out), field, values, [c.name for c in configs])
    return 0


def write_sweep(out: Path, field: str, values: tuple[str, ...], models: list[str]) -> dict:
    """OOD accuracy and shape bias of each value's model: printed, written as JSON and drawn."""
    from genfast.metrics import measure

    summary = measure(out / "raw-data", models=models)
    rows = []
    for value, model in zip(values, models):
        bias = summary.shape_bias.get(model)
        rows.append({"value": value, "model": model, "ood_accuracy": float(summary.ood_accuracy[model]),
                     "shape_bias": None if bias is None else float(bias.shape_bias)})
    print(f"\n| {field} | model | OOD accuracy | shape bias |\n|---|---|---|---|")
    for row in rows:
        bias = "-" if row["shape_bias"] is None else f"{row['shape_bias']:.3f}"
        print(f"| {row['value']} | {row['model']} | {row['ood_accuracy']:.3f} | {bias} |")
    result = {"field": field, "rows": rows}
    path = out / f"sweep-{field}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    _plot(out / f"sweep-{field}", field, rows)
    print(f"wrote {path} and {path.with_suffix('.png')}", file=sys.stderr)
    return result


def _plot(stem: Path, field: str, rows: list[dict]) -> None:
    """OOD accuracy and shape bias against the swept value (one point per value, in the order given)."""
    from genfast.plots.style import new_figure, save_figure

    fig = new_figure((5.2, 3.4))
    ax = fig.add_subplot(1, 1, 1)
    positions = range(len(rows))
    ax.plot(positions, [r["ood_accuracy"] for r in rows], marker="o", label="OOD accuracy")
    if any(r["shape_bias"] is not None for r in rows):
        ax.plot(positions, [float("nan") if r["shape_bias"] is None else r["shape_bias"] for r in rows],
                marker="s", label="shape bias")
    ax.set_xticks(list(positions), [r["value"] for r in rows])
    ax.set_xlabel(field)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    save_figure(fig, stem.parent, stem.name)
