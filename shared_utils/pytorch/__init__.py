"""The PyTorch core every PyTorch section and project shares, and the only way torch enters shared_utils.

- ``engine``: fit()/evaluate() with loss_fn tasks, schedules, EMA, TTA, TensorBoard, exact resume.
- ``pipeline``: the in-memory TensorLoader, image augmentations and labelled transforms (mixup, cutmix,
  rotation prediction, reconstruction), Dataset/DataLoader views of a NumPy dataset.
- ``models``: the model zoo (MLP, small CNN, PlainNet-n/ResNet-n, ResNet-18, freezing, pretrained weights).
- ``checkpoint``: atomic saves, ``weights_only=True`` loads.  ``device``: auto/cpu/cuda/mps.
- ``distributed``: DistributedDataParallel under torchrun.
"""
