"""Section 4: PyTorch studies on CIFAR-10 (architectures, transfer, augmentation, regularisation)."""
