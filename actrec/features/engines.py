"""What runs the backbone: eager PyTorch, torch.compile or onnxruntime, and the choice among them.

`BackboneRunner` is the one forward pass extraction and `actrec predict` share: normalised
batches through the chosen engine, under autocast for reduced precision. An engine that cannot
run the model here (no C++ compiler for torch.compile, an operator onnxruntime lacks) is
reported once and replaced by eager PyTorch, so a run never stops for it.
"""

from __future__ import annotations

import importlib.util
import io
import logging
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import BinaryIO

import torch
from torch import nn

from actrec.errors import ActrecError
from actrec.features.backbones import Backbone

logger = logging.getLogger(__name__)

# Each engine's set-up pays off only over enough frames: torch.compile builds for seconds and then
# gains a share of each forward; onnxruntime is ready sooner and gains more per frame on a CPU.
AUTO_COMPILE_FRAMES = 2_000
AUTO_ONNXRUNTIME_FRAMES = 100


def to_onnx(
    module: nn.Module, example: torch.Tensor, f: str | Path | BinaryIO, input_name: str, output_name: str
) -> None:
    """`module` as ONNX, through torch's TorchScript-based exporter, with the batch size left free."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notices say nothing to act on
        torch.onnx.export(
            module,
            (example,),
            f,
            dynamo=False,
            input_names=[input_name],
            output_names=[output_name],
            opset_version=17,
            dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}},
        )


def resolve_engine(engine: str, device: torch.device, precision: str, frames: int) -> str:
    """What runs the backbone. 'auto': onnxruntime for fp32 on a CPU (faster than the compiled torch model
    there, and ready sooner); otherwise torch, compiled; either only when the run is long enough to
    repay its set-up."""
    if engine == "onnxruntime" and (device.type != "cpu" or precision != "fp32"):
        raise ActrecError(
            f"params: extract.engine = 'onnxruntime' runs the backbone in fp32 on the CPU, but this "
            f"run resolved to device {device.type} and precision {precision}; use engine auto, "
            f"compile or eager there"
        )
    if engine != "auto":
        return engine
    if device.type == "cpu" and precision == "fp32" and importlib.util.find_spec("onnxruntime"):
        return "onnxruntime" if frames >= AUTO_ONNXRUNTIME_FRAMES else "eager"
    return "compile" if frames >= AUTO_COMPILE_FRAMES else "eager"


class OnnxRuntimeForward:
    """The backbone exported to ONNX (batch size left free) and run by onnxruntime's CPU kernels."""

    def __init__(self, model: torch.nn.Module, image_size: int) -> None:
        import onnxruntime as ort  # here, not at the top: eager runs need not pay for importing it

        graph = io.BytesIO()
        to_onnx(model, torch.zeros(1, 3, image_size, image_size), graph, "images", "features")
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        self.session = ort.InferenceSession(graph.getvalue(), options, providers=["CPUExecutionProvider"])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.session.run(None, {"images": x.contiguous().numpy()})[0])


class BackboneRunner:
    """The backbone's forward on normalised batches, under autocast, run by `engine`: eager, compile or onnxruntime.

    Compiled, every batch is padded to `batch_size` so that one static shape is compiled once (a
    short last batch would otherwise compile again). Where the chosen engine cannot run the model
    (no C++ compiler for torch.compile, an operator onnxruntime lacks, an unsupported platform) the
    runner warns once and goes on with the eager model.
    """

    def __init__(
        self, backbone: Backbone, device: torch.device, precision: str, batch_size: int, engine: str = "eager"
    ) -> None:
        self.backbone, self.device, self.batch_size, self.engine = backbone, device, batch_size, engine
        self.model = backbone.model.to(device).to(memory_format=torch.channels_last).eval()
        self.fast: Callable[[torch.Tensor], torch.Tensor] | None = None
        try:
            if engine == "compile":
                self.fast = torch.compile(self.model, dynamic=False)
            elif engine == "onnxruntime":
                self.fast = OnnxRuntimeForward(self.model, backbone.image_size)
        except Exception as err:
            self._fall_back(err)
        self.proven = False  # the fast forward has run once
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        self.autocast = (lambda: torch.autocast(device.type, dtype=dtype)) if dtype else nullcontext

    def _fall_back(self, err: Exception) -> None:
        logger.warning(
            "the %s engine failed (%s: %s); running the backbone in eager PyTorch",
            self.engine,
            type(err).__name__,
            str(err).splitlines()[0] if str(err) else "",
        )
        self.fast, self.engine = None, "eager"

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """float32 features (n, D) of uint8 images (n, 3, S, S) already on the device, n <= batch_size."""
        n = len(images)
        x = self.backbone.normalize(images)
        if self.engine == "compile" and n < self.batch_size:
            x = torch.cat([x, x.new_zeros((self.batch_size - n, *x.shape[1:]))])
        if self.engine != "onnxruntime":  # torch's kernels run fastest channels-last; the ONNX graph takes NCHW
            x = x.contiguous(memory_format=torch.channels_last)
        with self.autocast():
            if self.fast is not None:
                try:
                    out = self.fast(x)
                    self.proven = True
                    return out.float()[:n]
                except Exception as err:
                    if self.proven:
                        raise
                    self._fall_back(err)
            return self.model(x).float()[:n]
