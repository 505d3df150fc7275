"""Section 1: neural networks written out by hand in NumPy (no layer library, no autograd)."""
