"""Section 2: a NumPy layer library (Module protocol), losses, optimizers, gradient checking, trainer."""
