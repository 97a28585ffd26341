"""`actrec export`, `report`, `serve` and `watch`: a trained run's model written out, summed up, or served."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from actrec.errors import ActrecError


def _shape(spec: dict) -> str:
    return f"{spec['dtype']} ({', '.join(map(str, spec['shape']))})"


def export_command(args: argparse.Namespace) -> None:
    from actrec.export import export

    out = export(args.model, args.format, args.out, with_backbone=args.with_backbone)
    meta = json.loads(Path(f"{out}.json").read_text())
    print(f"wrote {out}: {meta['input']['name']} {_shape(meta['input'])} → probabilities {_shape(meta['output'])}")
    print(f"classes, sampling and preprocessing: {out}.json")


def report_command(args: argparse.Namespace) -> None:
    from actrec.evaluation.summary import run_report

    reports = Path(args.reports)
    try:
        metrics = json.loads((reports / "metrics.json").read_text())
        training = json.loads((reports / "train" / "metrics.json").read_text())
    except (OSError, ValueError) as err:
        raise ActrecError(f"no finished run's reports in {reports}/ ({err}); run dvc repro first") from err
    print("\n".join(run_report(metrics, training, args.reports)))


def serve_command(args: argparse.Namespace) -> None:
    from actrec.serving.app import ServeOptions, serve

    serve(ServeOptions(**{f.name: getattr(args, f.name) for f in dataclasses.fields(ServeOptions)}))


def watch_command(args: argparse.Namespace) -> None:
    from actrec.serving.watch import open_source, watch

    source = open_source(args.source, args.timeout)  # one that cannot be opened fails before the model loads
    from actrec.inference.predictor import Predictor

    predictor = Predictor(args.model, args.device)
    for event in watch(predictor, source, args.window, args.stride, args.realtime, args.top_k):
        print(json.dumps(event.as_dict()) if args.json else event.text(), flush=True)
