"""The PyTorch core every PyTorch section and project shares, and the only way torch enters shared_utils.

- ``engine``: fit()/evaluate() with loss_fn tasks, schedules, EMA, TTA, TensorBoard, exact resume.
- ``pipeline``: the in-memory TensorLoader, image augmentations and labelled transforms (mixup, cutmix,
  rotation prediction, reconstruction), Dataset/DataLoader views of a NumPy dataset.
- ``models``: the model zoo (MLP, small CNN, PlainNet-n/ResNet-n, ResNet-18, freezing, pretrained weights).
- ``checkpoint``: atomic saves, ``weights_only=True`` loads.  ``device``: auto/cpu/cuda/mps.
- ``distributed``: DistributedDataParallel under torchrun.
- ``memory``: freed CPU memory kept for the next step (set at import; DL_KEEP_FREED_MEMORY=0 turns it off).
"""
import os

# A training step's activations are hundreds of MB, and PyTorch's CPU allocator hands each back to the OS
# when it is freed, so every step's tensors are fresh pages that the kernel faults in and zeroes. The fix
# (shared_utils.pytorch.memory): glibc keeps freed memory for the next step, and nothing is faulted twice;
# measured on the airbench steps (benchmarks/cifar_step_ratio.py, 2-core Intel Xeon, float32): 1.3x faster for
# the anchor, 1.3-1.6x for the Muon recipe. DL_KEEP_FREED_MEMORY=0 turns it off. Where it is off (or not glibc),
# CPU tensors of 2 MB and more go on 2 MB pages instead (PyTorch's THP_MEM_ALLOC_ENABLE, read once, at the
# first CPU allocation, so set here, before any): 27x fewer faults, 1.14-1.26x faster steps (2-core AMD EPYC).
# With memory kept, 2 MB pages were slower (their 2 MB alignment wastes heap): not set then.
from shared_utils.pytorch.memory import keep_freed_memory  # noqa: E402

if not keep_freed_memory():
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
