#!/usr/bin/env bash
# ResNet50 fine-tuned (layer3 + layer4, the seeds' recipe: 5 epochs head alone, batch 4 x 2 accumulated steps,
# bf16 autocast) against frozen ResNet50, default head, nine real UCF-101 classes, official split 1, on a GPU.
#
#   DATA=shared/data SEEDS=42,1,2 OUT=/tmp/out bash benchmarks/gpu_finetune_resnet50.sh
#
# Needs on the machine: the actrec packages of pyproject.toml (python3 -m pip install -e . where a registry is
# reachable; else wheels, see docs/benchmarks.md, Fine-tuning), the clips under $DATA/ucf101-mini and $DATA/ucf101-six, and
# ResNet50's ImageNet weights (resnet50-11ad3fa6.pth) in $TORCH_HOME/hub/checkpoints, or WEIGHTS=a local state dict.
# Without weights it says so and stops. Prints what bench_pipeline prints (the machine first) into $OUT.
set -euo pipefail
DATA=${DATA:-shared/data}
OUT=${OUT:-/tmp/out}
WORK=${WORK:-/tmp/bench-finetune-resnet50}
WEIGHTS=${WEIGHTS:-imagenet}
mkdir -p "$OUT"
if [ "$WEIGHTS" = imagenet ]; then
  python3 -c "from actrec.features.backbones import load_backbone; load_backbone('resnet50', 'imagenet')" \
    || { echo "no ResNet50 ImageNet weights here: set WEIGHTS=a local file" | tee "$OUT/bench_finetune_resnet50.txt"; exit 2; }
fi
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -m benchmarks.bench_pipeline --root "$DATA/ucf101-mini" --root "$DATA/ucf101-six" --work "$WORK" \
  --seeds "${SEEDS:-42}" --set extract.backbone=resnet50 --set extract.frames=16 \
  --set "extract.weights=$WEIGHTS" --set "finetune.layers=[layer3, layer4]" --set finetune.freeze_epochs=5 \
  --set finetune.epochs=15 --set finetune.patience=5 --set finetune.batch_size=4 --set finetune.accum_steps=2 \
  2>&1 | tee "$OUT/bench_finetune_resnet50.txt"
