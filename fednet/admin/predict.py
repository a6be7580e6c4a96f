"""``fednet predict BUNDLE DATA.csv``: predictions of a run's model, and its metrics."""

from __future__ import annotations

import argparse
import json
import sys

from fednet.bundle import BundleError, read_bundle
from fednet.exceptions import DataError
from fednet.predict import predict_file, write_predictions


def predict_command(args: argparse.Namespace) -> int:
    """Predict ``args.data``; write ``--out``; print metrics with ``--label-column``."""
    try:
        with open(args.bundle, "rb") as handle:
            bundle = read_bundle(handle)
        scored = predict_file(bundle, args.data, args.label_column)
    except OSError as e:
        print(f"fednet predict: cannot read {args.bundle}: {e}", file=sys.stderr)
        return 2
    except (BundleError, DataError) as e:
        print(f"fednet predict: {e}", file=sys.stderr)
        return 2
    classes = bundle.schema.classes
    if args.out is not None:
        write_predictions(args.out, scored, classes)
    meta = bundle.meta
    report = {
        "run_id": meta["run_id"],
        "which": meta["which"],
        "server_round": meta["server_round"],
        "rows": len(scored.labels if scored.values is None else scored.values),
        "accuracy": scored.accuracy,
        "log_loss": scored.log_loss,
        "metrics": scored.metrics,
        "confusion": scored.confusion,
    }
    if args.json:
        print(json.dumps(report))
    else:
        print(
            f"run {report['run_id']} ({report['which']}, round"
            f" {report['server_round']}): {report['rows']} rows predicted"
            + (f" to {args.out}" if args.out else "")
        )
        if scored.metrics:
            print(", ".join(f"{k} {v:.4f}" for k, v in sorted(scored.metrics.items())))
    return 0
