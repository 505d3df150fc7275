"""A multi-layer perceptron written out by hand: explicit forward and backward passes.

No layer library and no autograd: every matrix product of backpropagation is on the page.
This is the "before" picture of section 2, which factors the same maths into layers.

    model = MLP([784, 256, 128, 10], activation="relu", seed=0)
    logits = model.forward(x)                      # (N, 784) -> (N, 10)
    loss, grad = softmax_cross_entropy(logits, y)  # mean loss and dL/dlogits
    model.backward(grad)                           # fills model.grad_w / model.grad_b
    model.sgd_step(lr=0.1)                         # w <- w - lr * dL/dw

It speaks the same small protocol as section 2's modules (forward(x, train),
backward(grad), state_dict()), so section 2's training loop can drive it.
"""
from __future__ import annotations

import numpy as np

from section2_optimization.losses import softmax_cross_entropy  # noqa: F401  (re-exported for readers)


# Each activation is (function, derivative written in terms of the function's *output*),
# which is all backward needs to keep: relu' = [out > 0], sigmoid' = out(1 - out), tanh' = 1 - out^2.
def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # equal to 1 / (1 + e^-z), and never overflows


ACTIVATIONS = {
    "relu": (lambda z: np.maximum(z, 0), lambda out: (out > 0).astype(out.dtype)),
    "sigmoid": (_sigmoid, lambda out: out * (1 - out)),
    "tanh": (np.tanh, lambda out: 1 - out * out),
}
# He initialisation keeps ReLU activations' variance constant across layers; Xavier does it for
# sigmoid/tanh, which are linear around zero.
INIT_GAIN = {"relu": 2.0, "sigmoid": 1.0, "tanh": 1.0}


class MLP:
    def __init__(self, sizes: list[int], activation: str = "relu", seed: int = 0, dtype=np.float32):
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.sizes, self.activation = list(sizes), activation
        self.act, self.act_grad = ACTIVATIONS[activation]
        rng = np.random.default_rng(seed)
        self.weights, self.biases = [], []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            if activation == "relu":
                std = np.sqrt(INIT_GAIN["relu"] / n_in)              # He (Kaiming) normal
            else:
                std = np.sqrt(2.0 / (n_in + n_out))                  # Xavier (Glorot) normal
            self.weights.append((rng.standard_normal((n_in, n_out)) * std).astype(dtype))
            self.biases.append(np.zeros(n_out, dtype=dtype))
        self.grad_w = [np.zeros_like(w) for w in self.weights]
        self.grad_b = [np.zeros_like(b) for b in self.biases]

    # ---------------------------------------------------------------- forward
    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        """(N, sizes[0]) -> (N, sizes[-1]) logits; keeps each layer's input for backward."""
        self._inputs = []            # the input of every linear layer: x, h1, h2, ...
        h = x
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            self._inputs.append(h)
            z = h @ w + b            # (N, n_in) @ (n_in, n_out) -> (N, n_out)
            h = z if i == last else self.act(z)
        return h

    # ---------------------------------------------------------------- backward
    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """From dL/dlogits (N, K), fill grad_w / grad_b and return dL/dx.

        For layer i with input h and output z = h W + b:
            dL/dW = h^T dL/dz,   dL/db = sum over the batch of dL/dz,   dL/dh = dL/dz W^T
        and through the activation h = act(z):  dL/dz = dL/dh * act'(z).
        """
        g = grad_out                                    # dL/dz of the last layer
        for i in reversed(range(len(self.weights))):
            h = self._inputs[i]
            self.grad_w[i] = h.T @ g                    # (n_in, N) @ (N, n_out)
            self.grad_b[i] = g.sum(axis=0)
            g = g @ self.weights[i].T                   # dL/dh, (N, n_in)
            if i > 0:                                   # h = act(z_{i-1}): chain through act'
                g = g * self.act_grad(h)
        return g

    def sgd_step(self, lr: float) -> None:
        """Plain gradient descent on every weight and bias."""
        for w, b, gw, gb in zip(self.weights, self.biases, self.grad_w, self.grad_b):
            w -= lr * gw
            b -= lr * gb

    # ---------------------------------------------------------------- saving
    def state_dict(self) -> dict[str, np.ndarray]:
        """Weights plus what is needed to rebuild the model (all plain arrays: .npz-safe)."""
        state = {f"w{i}": w for i, w in enumerate(self.weights)}
        state.update({f"b{i}": b for i, b in enumerate(self.biases)})
        state["meta_sizes"] = np.array(self.sizes, dtype=np.int64)
        state["meta_activation"] = np.array(self.activation)
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        for i in range(len(self.weights)):
            for name, target in ((f"w{i}", self.weights[i]), (f"b{i}", self.biases[i])):
                if name not in state or state[name].shape != target.shape:
                    raise ValueError(f"checkpoint entry {name} is missing or has the wrong shape")
                target[...] = state[name]

    @classmethod
    def from_state_dict(cls, state: dict[str, np.ndarray]) -> "MLP":
        if "meta_sizes" not in state or "meta_activation" not in state:
            raise ValueError("not an MLP checkpoint (no meta_sizes / meta_activation)")
        sizes, activation = np.asarray(state["meta_sizes"]), str(state["meta_activation"])
        # every value read from a file is checked before anything is allocated from it
        if sizes.ndim != 1 or sizes.dtype.kind not in "iu" or len(sizes) < 2 or (sizes < 1).any():
            raise ValueError(f"meta_sizes must be two or more positive integers, got {sizes.tolist()!r:.60}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"meta_activation must be one of {sorted(ACTIVATIONS)}, got {activation[:40]!r}")
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            w, b = state.get(f"w{i}"), state.get(f"b{i}")
            if w is None or b is None or w.shape != (n_in, n_out) or b.shape != (n_out,):
                raise ValueError(f"w{i}/b{i} are missing or do not match meta_sizes {sizes.tolist()}")
        model = cls([int(s) for s in sizes], activation)
        model.load_state_dict(state)
        return model

    def num_parameters(self) -> int:
        return int(sum(w.size + b.size for w, b in zip(self.weights, self.biases)))


class PlainSGD:
    """The optimizer interface section 2's trainer drives (``lr``, ``step()``), for this MLP."""

    def __init__(self, model: MLP, lr: float):
        self.model, self.lr = model, lr

    def step(self) -> None:
        self.model.sgd_step(self.lr)
