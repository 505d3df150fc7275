"""Data-parallel training under ``torchrun``: the engine calls these, scripts never have to.

    torchrun --nproc_per_node 2 section4_transfer/mlp_vs_cnn.py ...        # one machine
    torchrun --nnodes 2 --node_rank 0 --master_addr HOST --master_port 29500 \
             --nproc_per_node 4 <script> ...                              # each of two machines

``torchrun`` sets RANK, LOCAL_RANK and WORLD_SIZE for every process. With WORLD_SIZE > 1 the
engine joins the process group (gloo on the CPU, nccl on CUDA), wraps the model in
DistributedDataParallel, gives every rank its slice of each global batch, and all-reduces the
metrics; only rank 0 writes the run folder (RunDir checks :func:`is_main`). Outside torchrun
everything here reports a world of one and does nothing.
"""
from __future__ import annotations

import atexit
import os

import torch
import torch.distributed as dist


def world_size() -> int:
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def setup(device: torch.device) -> torch.device:
    """Join the process group when launched by torchrun with several processes; returns the device
    this rank trains on (``cuda:LOCAL_RANK`` on GPUs). A no-op for a single process."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return _local(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend=backend)
    # leave together: a rank that exits while another still talks to it makes gloo abort the other
    atexit.register(teardown)
    return _local(device)


def teardown() -> None:
    """Wait for every rank, then close the process group (registered at exit by :func:`setup`)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
        import gc

        gc.collect()   # free the process group's C++ side now, not during interpreter shutdown


def _local(device: torch.device) -> torch.device:
    if device.type == "cuda" and "LOCAL_RANK" in os.environ:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return device


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over ranks (in place, and returned); unchanged in a single process."""
    if active():
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def barrier() -> None:
    if active():
        dist.barrier()


def shard(start: int, stop: int) -> slice:
    """This rank's contiguous part of positions [start, stop): the slice of a global batch it trains on."""
    n, k, r = stop - start, world_size(), rank()
    per, extra = divmod(n, k)
    lo = start + r * per + min(r, extra)
    return slice(lo, lo + per + (1 if r < extra else 0))
