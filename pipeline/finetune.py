"""Stage 3, first (optional): fine-tune the backbone's last blocks with a temporal head, for extract to use.

python -m pipeline.finetune --split data/split.csv --out models/backbone.pt --report reports/finetune.json \
    --live reports/finetune

Off (finetune.enabled: false, the default), the backbone file holds no weights: extract runs with
params.extract's own, as if there were no such stage. On, it holds the fine-tuned network (or none
again, where the head alone validated best), and the report and dvclive's curves say how each epoch
went. The work folder (`finetune/` in extract.cache_dir, beside the cached features and, like them,
outside DVC's outputs) keeps the prepared inputs and the last epoch's state, so a run that is
interrupted goes on from there; it is emptied once done.
"""

from __future__ import annotations

import argparse
import logging
import shutil
from pathlib import Path

from dvclive import Live

from actrec.errors import run_main
from actrec.features.backbone_file import write_backbone_file
from actrec.files import output_dir, remove_leftovers, write_json
from actrec.params import load_params

logger = logging.getLogger("pipeline.finetune")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", type=Path, required=True, help="clip table the split stage wrote")
    parser.add_argument("--out", type=Path, required=True, help="backbone file to write (for extract)")
    parser.add_argument("--report", type=Path, required=True, help="JSON of how it went (DVC metrics)")
    parser.add_argument("--live", type=Path, required=True, help="dvclive folder: the epochs' curves")
    args = parser.parse_args(argv)
    params = load_params()
    for folder in (args.out.parent, args.report.parent, args.live):
        output_dir(folder)
    work = output_dir(Path(params.extract.cache_dir) / "finetune")
    remove_leftovers(work)
    with Live(str(args.live), dvcyaml=None, save_dvc_exp=False, report=None) as live:
        if not params.finetune.enabled:
            write_backbone_file(args.out, params.extract, None, {})
            write_json(args.report, {"enabled": False})
            logger.info("finetune.enabled is false: %s passes extract.weights through", args.out)
        else:  # what fine-tuning needs is imported only here: off, a default run pays for none of it
            from actrec.data.datasets import read_table
            from actrec.features.backbones import load_backbone
            from actrec.model.finetune import finetune
            from actrec.runtime import start_extraction

            table = read_table(args.split, "split")
            runtime = start_extraction(params.extract)
            runtime.log()
            backbone = load_backbone(params.extract.backbone, params.extract.weights, params.extract.image_size)
            state, result = finetune(backbone, table, params, runtime, work)
            for figures in result.history:
                for name, value in figures.items():
                    live.log_metric(name, value)
                live.next_step()
            record = {"layers": result.learning, "head": result.head, "best_epoch": result.best_epoch}
            write_backbone_file(args.out, params.extract, state, record)
            write_json(args.report, result.report(runtime))
            logger.info("wrote %s: best epoch %d of %d", args.out, result.best_epoch, len(result.history))
            shutil.rmtree(work)
            output_dir(work)


if __name__ == "__main__":
    run_main(main)
