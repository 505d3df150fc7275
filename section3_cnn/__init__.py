"""Section 3: convolution and pooling layers in NumPy on section 2's Module protocol (MNIST)."""
