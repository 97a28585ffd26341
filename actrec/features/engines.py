"""What runs the backbone: eager PyTorch, torch.compile, onnxruntime or OpenVINO, in which precision.

`BackboneRunner` is the one forward pass extraction and `actrec predict` share: batches of uint8
images through the chosen engine, in the chosen precision (autocast for torch, the runtime's own
setting for OpenVINO). An engine that cannot run the model here (no C++ compiler for
torch.compile, an operator a runtime lacks) is reported once and replaced by eager PyTorch, so a
run never stops for it. Which engine and precision `auto` takes is measured: see engine_trial.py.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from torch import nn

from actrec.devices import native_precision
from actrec.errors import ActrecError, first_line
from actrec.features.backbones import Backbone

logger = logging.getLogger(__name__)

ENGINES = ("eager", "compile", "onnxruntime", "openvino")
RUNTIMES = ("onnxruntime", "openvino")  # engines outside torch, running an exported graph
# Without a trial, each engine's set-up pays off only over enough frames: torch.compile builds for a long
# while and then gains a share of each forward; the runtimes are ready sooner and gain more on a CPU.
AUTO_COMPILE_FRAMES = 2_000
AUTO_RUNTIME_FRAMES = 100


def to_onnx(
    module: nn.Module, example: torch.Tensor, f: str | Path | BinaryIO, input_name: str, output_name: str
) -> None:
    """`module` as ONNX, through torch's TorchScript-based exporter, with the batch size left free.

    nn.MultiheadAttention's inference fast path (one fused operator, used by torchvision's and OpenCLIP's ViTs)
    has no ONNX form: it is turned off while tracing, so the attention exports as the matrix products it is.
    """
    fastpath = torch.backends.mha.get_fastpath_enabled()
    with warnings.catch_warnings(), contextlib.ExitStack() as restore:
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notices say nothing to act on
        torch.backends.mha.set_fastpath_enabled(False)
        restore.callback(torch.backends.mha.set_fastpath_enabled, fastpath)
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


def available(engine: str) -> bool:
    """Whether the engine's runtime is installed (torch's engines always are)."""
    return engine not in RUNTIMES or importlib.util.find_spec(engine) is not None


def supports(engine: str, precision: str, device: torch.device) -> bool:
    """Whether `engine` can run the backbone in `precision` on `device`: onnxruntime in fp32 on a CPU,
    OpenVINO in fp32, or in bf16 on a CPU that runs it natively (elsewhere OpenVINO ignores its bf16 hint and
    computes fp32), torch's engines in any precision anywhere."""
    if engine == "onnxruntime":
        return device.type == "cpu" and precision == "fp32"
    if engine == "openvino":
        return device.type == "cpu" and (
            precision == "fp32" or (precision == "bf16" and native_precision("bf16", device))
        )
    return engine in ENGINES


def resolve_engine(engine: str, device: torch.device, precision: str, frames: int) -> str:
    """What runs the backbone without a trial (short runs, `actrec predict`). 'auto': on a CPU a runtime, OpenVINO
    for bf16 and onnxruntime for fp32 (both well ahead of torch there, and ready in a second or two);
    elsewhere torch, compiled; each only when the run is long enough to repay its set-up."""
    if engine != "auto" and not supports(engine, precision, device):
        runs = "in fp32 on the CPU" if engine == "onnxruntime" else "in fp32 or bf16 on the CPU"
        raise ActrecError(
            f"params: extract.engine = {engine!r} runs the backbone {runs}, but this run resolved to device "
            f"{device.type} and precision {precision}; use engine auto, compile or eager there"
        )
    if engine != "auto":
        return engine
    runtime = {"fp32": "onnxruntime", "bf16": "openvino"}.get(precision)
    if device.type == "cpu" and runtime and available(runtime) and supports(runtime, precision, device):
        return runtime if frames >= AUTO_RUNTIME_FRAMES else "eager"
    return "compile" if frames >= AUTO_COMPILE_FRAMES else "eager"


class _Normalized(nn.Module):
    """uint8 images in, features out: the normalisation travels inside the exported graph, where the runtime
    fuses it with the first convolution instead of torch making three passes over every batch first."""

    def __init__(self, backbone: Backbone) -> None:
        super().__init__()
        self.backbone, self.model = backbone, backbone.model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(self.backbone.normalize(images))


def _onnx_graph(backbone: Backbone) -> bytes:
    """The backbone with its normalisation as ONNX: uint8 images (batch, 3, S, S) → features (batch, D)."""
    graph = io.BytesIO()
    size = backbone.image_size
    example = torch.zeros(1, 3, size, size, dtype=torch.uint8)
    to_onnx(_Normalized(backbone).eval(), example, graph, "images", "features")
    return graph.getvalue()


class OnnxRuntimeForward:
    """The backbone exported to ONNX (batch size left free) and run by onnxruntime's CPU kernels."""

    def __init__(self, backbone: Backbone) -> None:
        import onnxruntime as ort  # here, not at the top: eager runs need not pay for importing it

        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        self.session = ort.InferenceSession(_onnx_graph(backbone), options, providers=["CPUExecutionProvider"])

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.session.run(None, {"images": images.contiguous().numpy()})[0])


class OpenVinoForward:
    """The backbone exported to ONNX and compiled by OpenVINO for the CPU, in fp32 or (where the CPU runs it
    natively) bf16.

    Compiled for throughput: each batch is split among OpenVINO's streams, which run side by side, so
    a core taken for a moment by a decoding worker holds up one stream, not the whole batch.
    """

    def __init__(self, backbone: Backbone, precision: str) -> None:
        import openvino as ov  # here, not at the top: other engines need not pay for importing it

        core = ov.Core()
        config = {
            "INFERENCE_PRECISION_HINT": {"fp32": "f32", "bf16": "bf16"}[precision],
            "PERFORMANCE_HINT": "THROUGHPUT",
            "INFERENCE_NUM_THREADS": torch.get_num_threads(),
        }
        self.compiled = core.compile_model(core.read_model(_onnx_graph(backbone)), "CPU", config)
        streams = self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")
        self.requests = [self.compiled.create_infer_request() for _ in range(max(1, streams))]

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        batch = images.contiguous().numpy()
        parts = np.array_split(batch, min(len(self.requests), len(batch)))
        for request, part in zip(self.requests, parts, strict=False):
            request.start_async({0: part})
        out = []
        for request in self.requests[: len(parts)]:
            request.wait()
            out.append(request.get_output_tensor(0).data.copy())  # a request reuses its output buffer
        return torch.from_numpy(np.concatenate(out))


class BackboneRunner:
    """The backbone's forward on batches of uint8 images in `precision`, run by `engine`.

    Compiled, every batch is padded to `batch_size` so that one static shape is compiled once (a
    short last batch would otherwise compile again). Where the chosen engine cannot run the model
    (no C++ compiler for torch.compile, an operator a runtime lacks, an unsupported platform) the
    runner warns once and goes on with the eager model.
    """

    def __init__(
        self, backbone: Backbone, device: torch.device, precision: str, batch_size: int, engine: str = "eager"
    ) -> None:
        self.backbone, self.device, self.batch_size, self.engine = backbone, device, batch_size, engine
        self.model = backbone.model.to(device).to(memory_format=torch.channels_last).eval()
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        self.fast: Callable[[torch.Tensor], torch.Tensor] | None = None
        self.proven = False  # the fast forward has run once
        try:
            if engine == "compile":
                # Inductor imports torch's C++ extension builder, which warns on every CPU-only machine that
                # it found no CUDA runtime: nothing a user can or need act on.
                logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
                self.fast = torch.compile(self.model, dynamic=False)
            elif engine == "onnxruntime":
                self.fast = OnnxRuntimeForward(backbone)
            elif engine == "openvino":
                self.fast = OpenVinoForward(backbone, precision)
        except Exception as err:
            self._fall_back(err)

    def _fall_back(self, err: Exception) -> None:
        logger.warning(
            "the %s engine failed (%s: %s); running the backbone in eager PyTorch",
            self.engine,
            type(err).__name__,
            first_line(err),
        )
        self.fast, self.engine = None, "eager"

    def _autocast(self) -> contextlib.AbstractContextManager:
        """Reduced precision for torch's kernels (the runtimes set their own)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """float32 features (n, D) of uint8 images (n, 3, S, S) already on the device, n <= batch_size."""
        n = len(images)
        if self.engine in RUNTIMES:  # they normalise inside their graph and take NCHW uint8
            out = self._fast(images)
            if out is not None:
                return out
        x = self.backbone.normalize(images).contiguous(memory_format=torch.channels_last)  # torch's fastest layout
        with self._autocast():
            if self.engine == "compile":
                padded = torch.cat([x, x.new_zeros((self.batch_size - n, *x.shape[1:]))]) if n < self.batch_size else x
                out = self._fast(padded)
                if out is not None:
                    return out[:n]
            return self.model(x).float()  # eager, or after the compiled model failed: the batch as it came

    def _fast(self, x: torch.Tensor) -> torch.Tensor | None:
        """The chosen engine's output, or None once it failed on its first batch (then eager runs)."""
        if self.fast is None:
            return None
        try:
            out = self.fast(x).float()
        except Exception as err:
            if self.proven:
                raise
            self._fall_back(err)
            return None
        self.proven = True
        return out
