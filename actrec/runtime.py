"""One runtime: where and how a stage or command runs, every `auto` resolved once at its start.

The device, the torchrun world, the precision, the engine that runs a feature source's network, the images per
forward, the decoding workers, where frames are resized and torch's threads are worked out here (by the rules
of devices.py), logged once, and passed down whole as one frozen `Runtime`, as nanoGPT passes its config: no
function below a stage's start resolves an `auto` again. Extraction adds the engine and precision its engine
trial measured (`Runtime.running`); `actrec predict` the precision its model's features were made in
(`Runtime.reproducing`). The engine may stay `auto` where a job's length decides it (engines.resolve_engine).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Literal

import torch

from actrec import distributed
from actrec.devices import resolve_batch_size, resolve_device, resolve_num_workers, resolve_precision
from actrec.distributed import SINGLE, World
from actrec.params import ExtractParams

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Runtime:
    """Where a run computes and with what, every value resolved (only `engine` may stay `auto`, see above)."""

    device: torch.device
    world: World = SINGLE
    precision: str = "fp32"  # fp32, bf16 or fp16
    engine: str = "auto"  # what runs a source's network: eager, compile, onnxruntime, openvino (none: no network)
    batch_size: int = 16  # images (frames, windows) per forward of a source's network
    num_workers: int = 0  # decoding processes feeding the device
    threads: int = 1  # torch's intra-op threads
    resize_on: Literal["workers", "device"] = "workers"  # where decoded frames are resized and cropped

    @classmethod
    def resolve(
        cls,
        device: str | torch.device = "auto",
        *,
        world: World = SINGLE,
        precision: str = "auto",
        engine: str = "auto",
        batch_size: int | str = "auto",
        num_workers: int | str = "auto",
        resize_on: str = "auto",
    ) -> Runtime:
        """Each `auto` as the hardware answers it; a GPU is this rank's own (`world.local_rank`). No side effect:
        `start` is what joins torchrun's group and sets torch's threads."""
        resolved = resolve_device(device)
        if resolved.type == "cuda":
            resolved = torch.device("cuda", world.local_rank)
        # extract.resize_on: `auto` resizes on the GPU in GPU runs, in the decoding workers otherwise
        on_device = resize_on == "device" or (resize_on == "auto" and resolved.type == "cuda")
        return cls(
            device=resolved,
            world=world,
            precision=resolve_precision(precision, resolved),
            engine=engine,
            batch_size=resolve_batch_size(batch_size, resolved),
            num_workers=resolve_num_workers(num_workers, resolved),
            threads=torch.get_num_threads(),
            resize_on="device" if on_device else "workers",
        )

    def running(self, engine: str, precision: str) -> Runtime:
        """This runtime with the engine and precision a choice settled on (extraction's engine trial)."""
        return dataclasses.replace(self, engine=engine, precision=precision)

    def reproducing(self, recorded: str) -> Runtime:
        """This runtime in the precision features were recorded in, unless this machine cannot run it natively.

        There fp32 (on CPU) or fp16 (on a GPU without bf16) computes the same features at least as exactly,
        instead of an emulated bf16 several times slower.
        """
        if self.device.type == "cuda":
            precision = "fp16" if recorded == "bf16" and not torch.cuda.is_bf16_supported() else recorded
        else:
            precision = recorded if recorded in ("fp32", resolve_precision("auto", self.device)) else "fp32"
        return dataclasses.replace(self, precision=precision)

    def describe(self) -> str:
        """One line for the log: everything resolved."""
        ranks = f" × {self.world.size} ranks" if self.world.size > 1 else ""
        return (
            f"{self.device}{ranks}, {self.precision}, engine {self.engine}, {self.batch_size} images a forward, "
            f"{self.num_workers} decoding workers (frames resized in the {self.resize_on}), {self.threads} threads"
        )

    def log(self) -> None:
        """Say once what the run resolved (rank 0 speaks for every rank)."""
        if self.world.is_main:
            logger.info("runtime: %s", self.describe())


CPU = Runtime(torch.device("cpu"))  # one process on the CPU in fp32, for tests and library calls given no runtime


def start(
    device: str = "auto",
    *,
    threads: int | str = "auto",
    precision: str = "auto",
    engine: str = "auto",
    batch_size: int | str = "auto",
    num_workers: int | str = "auto",
    resize_on: str = "auto",
) -> Runtime:
    """A stage's or command's runtime: torch's threads set where given, torchrun's process group joined where
    the stage was launched by it (distributed.init), every other `auto` resolved (Runtime.resolve).
    `stop` leaves the group again."""
    if threads != "auto":
        torch.set_num_threads(int(threads))
    world = distributed.init(resolve_device(device).type)
    return Runtime.resolve(
        device,
        world=world,
        precision=precision,
        engine=engine,
        batch_size=batch_size,
        num_workers=num_workers,
        resize_on=resize_on,
    )


def start_extraction(cfg: ExtractParams) -> Runtime:
    """The runtime params.extract asks for (its device, threads, precision, engine, batch_size, num_workers and
    resize_on), started as `start` starts one."""
    return start(
        cfg.device,
        threads=cfg.threads,
        precision=cfg.precision,
        engine=cfg.engine,
        batch_size=cfg.batch_size,
        num_workers=cfg.num_workers,
        resize_on=cfg.resize_on,
    )


def stop(runtime: Runtime) -> None:
    """Leave torchrun's process group, if the run joined one."""
    distributed.shutdown(runtime.world)
