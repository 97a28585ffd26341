#!/usr/bin/env bash
# The GPU figures of the decoding targets, in one run of under 8 minutes on one GPU with 16 cores:
#   - ResNet50 bf16 end to end (decode, resize, forward, write) over the real UCF-101 clips: target >= 8,000 frames/s,
#     with the resize on the GPU (extract.resize_on: auto) and, to compare, in the workers;
#   - decoding alone per worker count, 1 to 16 workers: target, each of 16 workers >= 0.8 of one worker alone;
#   - what the main process pays to receive frames from 16 workers;
#   - the GPU's resize against the CPU's on real frames (the GPU-only code path, by numbers).
# Usage, from the repository root:  bash benchmarks/gpu_check.sh [DATA]   (DATA: the folder holding ucf101-mini/
# and ucf101-six/; default: shared/data or ../shared/data). PYTHON picks the interpreter (default: python).
set -euo pipefail
PYTHON=${PYTHON:-python}
DATA=${1:-$( [ -d shared/data ] && echo shared/data || echo ../shared/data )}
REPEAT=${REPEAT:-10}  # passes over the 300 clips for the end-to-end figure (48,000 frames)
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

echo "== machine ($(date +%F))"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
lscpu | grep -E '^(Model name|CPU\(s\)|Thread\(s\) per core|Core\(s\) per socket|Socket\(s\))' || true
"$PYTHON" -c "import torch, av; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'PyAV', av.__version__)"
"$PYTHON" -c "from actrec.data.seeking import torchcodec_usable; print('torchcodec usable:', torchcodec_usable())"

# One UCF-101 root over both real sets (300 clips, 9 classes): links, as the shared README says.
ROOT=$(mktemp -d)
trap 'rm -rf "$ROOT"' EXIT
mkdir -p "$ROOT/UCF-101"
for set in ucf101-mini ucf101-six; do
  for class in "$DATA/$set/UCF-101"/*/; do ln -s "$(cd "$class" && pwd)" "$ROOT/UCF-101/$(basename "$class")"; done
done
echo "clips: $(find -L "$ROOT/UCF-101" -name '*.avi' | wc -l) under $ROOT (from $DATA)"

COMMON=(--root "$ROOT" --backbone resnet50 --weights none --precision bf16 --device cuda --engine eager --skip-naive)

echo; echo "== end to end, resize on the GPU: every clip (--limit 0) x $REPEAT passes, each pass counted as new videos"
timeout 200 "$PYTHON" -m benchmarks.bench_extract "${COMMON[@]}" --limit 0 --repeat "$REPEAT" --skip-decoding-table

echo; echo "== end to end, resize in the workers (extract.resize_on: workers), to compare"
timeout 150 "$PYTHON" -m benchmarks.bench_extract "${COMMON[@]}" --limit 0 --repeat "$REPEAT" --skip-decoding-table \
  --resize-on workers | grep -E '^(2\. pipeline|   decoding|   combined|4\.|   pipeline /)'

echo; echo "== decoding alone by worker count (decoding + sampling; frames sent whole for the GPU to resize)"
timeout 150 "$PYTHON" -m benchmarks.bench_extract "${COMMON[@]}" --limit 0 --decoding-table-only \
  --worker-counts 1,2,4,8,12,16 --decoders auto,decord

echo; echo "== the same with the resize in the workers (what a CPU run's workers do)"
timeout 100 "$PYTHON" -m benchmarks.bench_extract "${COMMON[@]}" --limit 0 --decoding-table-only \
  --worker-counts 1,16 --decoders auto --resize-on workers | tail -n 3

echo; echo "== what the main process pays to receive frames from 16 workers (UCF-101-sized frames, sent whole)"
timeout 60 "$PYTHON" -m benchmarks.bench_receive --workers 16 --batches 64 --size 320 | tail -n 2

echo; echo "== GPU resize against CPU resize on real frames (uint8 levels; features' cosine)"
timeout 60 "$PYTHON" - "$ROOT" <<'EOF'
import sys
from pathlib import Path

import torch

from actrec.data.decoding import read_clip
from actrec.features.backbones import load_backbone

net = load_backbone("resnet50", None, 224)
model = net.model.cuda().eval()
clips = sorted(Path(sys.argv[1]).glob("UCF-101/*/*_g01_c01.avi"))
worst, cosines = 0, []
for clip in clips:
    frames = torch.from_numpy(read_clip(clip, 16)[0])
    cpu, gpu = net.preprocess(frames), net.preprocess(frames.cuda()).cpu()
    worst = max(worst, int((cpu.int() - gpu.int()).abs().max()))
    with torch.inference_mode():
        a, b = (model(net.normalize(x.cuda())).float() for x in (cpu, gpu))
    cosines.append(torch.nn.functional.cosine_similarity(a, b).min().item())
print(f"{len(clips)} clips x 16 frames: largest difference {worst} levels; features' cosine, lowest {min(cosines):.5f}")
EOF
