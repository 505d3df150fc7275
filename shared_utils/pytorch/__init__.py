"""The PyTorch core every PyTorch section and project shares, and the only way torch enters shared_utils.

- ``engine``: fit()/evaluate() with loss_fn tasks, schedules, EMA, TTA, TensorBoard, exact resume.
- ``pipeline``: the in-memory TensorLoader, image augmentations and labelled transforms (mixup, cutmix,
  rotation prediction, reconstruction), Dataset/DataLoader views of a NumPy dataset.
- ``models``: the model zoo (MLP, small CNN, PlainNet-n/ResNet-n, ResNet-18, freezing, pretrained weights).
- ``checkpoint``: atomic saves, ``weights_only=True`` loads.  ``device``: auto/cpu/cuda/mps.
- ``distributed``: DistributedDataParallel under torchrun.
"""
import os

# CPU tensors of 2 MB and more on 2 MB pages (PyTorch's THP_MEM_ALLOC_ENABLE, read once, at the first
# CPU allocation, so set here, before any): a training step's activations are hundreds of MB, and on 4 kB pages
# each is a fresh mmap whose every page the kernel faults in and zeroes. Measured on the airbench steps
# (benchmarks/cifar_step_ratio.py, 2-core AMD EPYC): 1.14-1.26x faster steps, 27x fewer page faults. Set
# THP_MEM_ALLOC_ENABLE=0 to turn it off; where the kernel's transparent huge pages are "never" it does nothing.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
