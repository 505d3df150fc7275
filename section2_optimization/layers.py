"""A small layer library in NumPy: every layer is a Module with forward and backward.

The protocol (section 3's convolutions follow it too):

    out = layer.forward(x, train=True)     # caches what backward needs
    grad_x = layer.backward(grad_out)      # fills p.grad for each Parameter, returns dL/dx
    layer.named_parameters()               # [("weight", Parameter), ...], torch-style names
    layer.state_dict() / load_state_dict() # parameters and buffers as plain arrays (.npz-ready)

Gradients are overwritten by each backward (not accumulated), so no zero_grad is needed.
Layers keep the dtype they are given: float32 for training speed, float64 for checking.
Shapes: Linear and the 1-D layers take (N, features); activations take any shape.
"""
from __future__ import annotations

import math
from typing import Iterable, Iterator

import numpy as np


class Parameter:
    """A trainable array and the gradient of the loss with respect to it."""

    __slots__ = ("data", "grad")

    def __init__(self, data: np.ndarray):
        self.data = data
        self.grad = np.zeros_like(data)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape


class Module:
    """Base class: children in attributes are found automatically, like torch.nn.Module."""

    training = True

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        return self.forward(x, train)

    # -- parameters and state, named like PyTorch so checkpoints read the same
    def _children(self) -> Iterator[tuple[str, "Module"]]:
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value

    def _own_parameters(self) -> Iterator[tuple[str, Parameter]]:
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield name, value

    def buffers(self) -> dict[str, np.ndarray]:
        """Non-trained state saved with the model (BatchNorm's running statistics)."""
        return {}

    def named_parameters(self, prefix: str = "") -> list[tuple[str, Parameter]]:
        found = [(prefix + name, p) for name, p in self._own_parameters()]
        for name, child in self._children():
            found += child.named_parameters(f"{prefix}{name}.")
        return found

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def num_parameters(self) -> int:
        return int(sum(p.data.size for p in self.parameters()))

    def state_dict(self, prefix: str = "") -> dict[str, np.ndarray]:
        state = {prefix + name: p.data for name, p in self._own_parameters()}
        state.update({prefix + name: value for name, value in self.buffers().items()})
        for name, child in self._children():
            state.update(child.state_dict(f"{prefix}{name}."))
        return state

    def load_state_dict(self, state: dict[str, np.ndarray], prefix: str = "") -> None:
        """Copy arrays into this model in place; a missing key or wrong shape is a ValueError."""
        for name, p in self._own_parameters():
            p.data[...] = _checked(state, prefix + name, p.data.shape)
        for name, value in self.buffers().items():
            value[...] = _checked(state, prefix + name, value.shape)
        for name, child in self._children():
            child.load_state_dict(state, f"{prefix}{name}.")

    def astype(self, dtype) -> "Module":
        """Cast parameters and buffers (float64 for gradient checks, float32 to train)."""
        for _, p in self._own_parameters():
            p.data = p.data.astype(dtype)
            p.grad = np.zeros_like(p.data)
        self._cast_buffers(dtype)
        for _, child in self._children():
            child.astype(dtype)
        return self

    def _cast_buffers(self, dtype) -> None:
        pass

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def write_grad(p: Parameter, compute, view_shape: tuple | None = None) -> None:
    """Store ``compute(out)`` as ``p.grad``, computing straight into the existing array when it
    can (an optimizer's flat buffer: no copy later). ``view_shape`` lets a layer compute into a
    reshaped view, e.g. a conv kernel seen as a (kh*kw*C, F) matrix. ``compute(None)`` must
    return a fresh array."""
    target = p.grad
    if target.flags.c_contiguous and target.flags.writeable and target.dtype == p.data.dtype:
        try:
            compute(target if view_shape is None else target.reshape(view_shape))
            return
        except (TypeError, ValueError):  # a dtype or shape the ufunc cannot write into
            pass
    result = compute(None)
    p.grad = result if view_shape is None else result.reshape(p.data.shape)


def _checked(state: dict, key: str, shape: tuple) -> np.ndarray:
    if key not in state:
        raise ValueError(f"checkpoint has no entry {key!r}")
    if tuple(state[key].shape) != tuple(shape):
        raise ValueError(f"checkpoint entry {key!r} has shape {tuple(state[key].shape)}, model needs {tuple(shape)}")
    return state[key]


# --------------------------------------------------------------------------- initialisers
# Each returns an array of ``shape``; fan_in/fan_out follow torch.nn.init for (out, in, *kernel).
def _fans(shape: tuple[int, ...], layout: str = "in_out") -> tuple[int, int]:
    """Linear weights here are (in, out) so that forward is x @ W; conv weights are (out, in, kh, kw)."""
    if len(shape) == 2:
        fan_in, fan_out = (shape[0], shape[1]) if layout == "in_out" else (shape[1], shape[0])
        return fan_in, fan_out
    receptive = int(np.prod(shape[2:]))
    return shape[1] * receptive, shape[0] * receptive


def zeros(shape, rng=None, dtype=np.float32, **_) -> np.ndarray:
    return np.zeros(shape, dtype=dtype)


def normal(shape, rng: np.random.Generator, std: float = 0.01, dtype=np.float32, **_) -> np.ndarray:
    return (rng.standard_normal(shape) * std).astype(dtype)


def xavier_uniform(shape, rng, gain: float = 1.0, dtype=np.float32, layout="in_out") -> np.ndarray:
    fan_in, fan_out = _fans(shape, layout)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-bound, bound, shape).astype(dtype)


def xavier_normal(shape, rng, gain: float = 1.0, dtype=np.float32, layout="in_out") -> np.ndarray:
    fan_in, fan_out = _fans(shape, layout)
    return (rng.standard_normal(shape) * gain * math.sqrt(2.0 / (fan_in + fan_out))).astype(dtype)


def he_uniform(shape, rng, gain: float = math.sqrt(2.0), dtype=np.float32, layout="in_out") -> np.ndarray:
    fan_in, _ = _fans(shape, layout)
    bound = gain * math.sqrt(3.0 / fan_in)
    return rng.uniform(-bound, bound, shape).astype(dtype)


def he_normal(shape, rng, gain: float = math.sqrt(2.0), dtype=np.float32, layout="in_out") -> np.ndarray:
    fan_in, _ = _fans(shape, layout)
    return (rng.standard_normal(shape) * gain / math.sqrt(fan_in)).astype(dtype)


INITIALIZERS = {"zeros": zeros, "normal": normal, "xavier_uniform": xavier_uniform,
                "xavier_normal": xavier_normal, "he_uniform": he_uniform, "he_normal": he_normal}


# --------------------------------------------------------------------------- layers
class Linear(Module):
    """y = x @ W + b with W of shape (in, out): (N, in) -> (N, out)."""

    def __init__(self, in_features: int, out_features: int, *, rng: np.random.Generator | None = None,
                 init: str = "he_normal", bias: bool = True, dtype=np.float32, **init_kwargs):
        rng = rng if rng is not None else np.random.default_rng(0)
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(INITIALIZERS[init]((in_features, out_features), rng=rng, dtype=dtype, **init_kwargs))
        self.bias = Parameter(np.zeros(out_features, dtype=dtype)) if bias else None
        self._x = None

    def _own_parameters(self):
        yield "weight", self.weight
        if self.bias is not None:
            yield "bias", self.bias

    def forward(self, x, train=True):
        self._x = x
        out = x @ self.weight.data
        if self.bias is not None:
            out += self.bias.data
        return out

    def backward(self, grad_out):
        self.backward_params(grad_out)
        return grad_out @ self.weight.data.T

    def backward_params(self, grad_out):
        """Parameter gradients only: what the first layer needs when nobody asks for dL/dx.
        Written into the existing gradient arrays (an optimizer's flat buffer) when dtypes agree."""
        write_grad(self.weight, lambda out: np.matmul(self._x.T, grad_out, out=out))  # (in, N) @ (N, out)
        if self.bias is not None:
            write_grad(self.bias, lambda out: np.sum(grad_out, axis=0, out=out))

    def __repr__(self):
        return f"Linear({self.in_features}, {self.out_features})"


class ReLU(Module):
    def forward(self, x, train=True):
        self._mask = x > 0
        return x * self._mask

    def backward(self, grad_out):
        return grad_out * self._mask


class LeakyReLU(Module):
    def __init__(self, negative_slope: float = 0.01):
        self.negative_slope = negative_slope

    def forward(self, x, train=True):
        self._scale = np.where(x > 0, 1.0, self.negative_slope).astype(x.dtype)
        return x * self._scale

    def backward(self, grad_out):
        return grad_out * self._scale


class Sigmoid(Module):
    def forward(self, x, train=True):
        self._out = sigmoid(x)
        return self._out

    def backward(self, grad_out):
        return grad_out * self._out * (1 - self._out)


class Tanh(Module):
    def forward(self, x, train=True):
        self._out = np.tanh(x)
        return self._out

    def backward(self, grad_out):
        return grad_out * (1 - self._out ** 2)


class GELU(Module):
    """x * Phi(x) with the exact normal CDF (torch's default, approximate='none')."""

    def forward(self, x, train=True):
        from scipy.special import erf

        self._x = x
        self._cdf = (0.5 * (1.0 + erf(x / math.sqrt(2.0)))).astype(x.dtype)
        return x * self._cdf

    def backward(self, grad_out):
        pdf = np.exp(-0.5 * self._x ** 2) / math.sqrt(2.0 * math.pi)
        return grad_out * (self._cdf + self._x * pdf)


class Dropout(Module):
    """Inverted dropout: in training, zero each unit with probability p and scale the rest by
    1/(1-p), so evaluation needs no rescaling; in eval mode it is the identity."""

    def __init__(self, p: float = 0.5, *, seed: int = 0):
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p
        self.rng = np.random.default_rng(seed)
        self._mask = None

    def reseed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def forward(self, x, train=True):
        if not train or self.p == 0.0:
            self._mask = None
            return x
        keep = self.rng.random(x.shape) >= self.p
        self._mask = keep.astype(x.dtype) / x.dtype.type(1.0 - self.p)
        return x * self._mask

    def backward(self, grad_out):
        return grad_out if self._mask is None else grad_out * self._mask


class BatchNorm1d(Module):
    """Normalise each feature over the batch (training) or with running statistics (eval).

    Same conventions as torch.nn.BatchNorm1d: biased variance to normalise, unbiased
    variance in the running estimate, ``running = (1 - momentum) * running + momentum * batch``.
    """

    def __init__(self, num_features: int, *, eps: float = 1e-5, momentum: float = 0.1, dtype=np.float32):
        self.eps, self.momentum = eps, momentum
        self.weight = Parameter(np.ones(num_features, dtype=dtype))
        self.bias = Parameter(np.zeros(num_features, dtype=dtype))
        self.running_mean = np.zeros(num_features, dtype=dtype)
        self.running_var = np.ones(num_features, dtype=dtype)

    def buffers(self):
        return {"running_mean": self.running_mean, "running_var": self.running_var}

    def _cast_buffers(self, dtype):
        self.running_mean = self.running_mean.astype(dtype)
        self.running_var = self.running_var.astype(dtype)

    def forward(self, x, train=True):
        self._train = train
        if train:
            n = x.shape[0]
            if n < 2:
                raise ValueError("BatchNorm1d in training mode needs at least 2 examples per batch "
                                 "(a single example has no variance); use eval mode for one example")
            mean = x.mean(axis=0)
            var = x.var(axis=0)
            self.running_mean *= 1 - self.momentum
            self.running_mean += self.momentum * mean
            self.running_var *= 1 - self.momentum
            self.running_var += self.momentum * var * (n / (n - 1))
        else:
            mean, var = self.running_mean, self.running_var
        self._inv_std = 1.0 / np.sqrt(var + self.eps)
        self._x_hat = (x - mean) * self._inv_std
        return self._x_hat * self.weight.data + self.bias.data

    def backward(self, grad_out):
        self.weight.grad = (grad_out * self._x_hat).sum(axis=0)
        self.bias.grad = grad_out.sum(axis=0)
        g = grad_out * self.weight.data
        if not self._train:  # statistics are constants in eval mode
            return g * self._inv_std
        # batch statistics depend on x: the compact form of the three-term chain rule
        return self._inv_std * (g - g.mean(axis=0) - self._x_hat * (g * self._x_hat).mean(axis=0))


class Flatten(Module):
    """(N, C, H, W) -> (N, C*H*W); backward restores the shape."""

    def forward(self, x, train=True):
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, grad_out):
        return grad_out.reshape(self._shape)


class Sequential(Module):
    """Layers applied in order; parameters named ``"<index>.<name>"`` as in torch.nn.Sequential.

    ``requires_input_grad`` plays the part of ``x.requires_grad`` in PyTorch: when False,
    backward stops at the first layer's parameter gradients and returns None, which saves
    the first layer's input-gradient product (a large share of a small net's backward, and
    for a convolution the whole col2im). Training sets it False; saliency needs it True.
    """

    def __init__(self, *layers: Module, requires_input_grad: bool = True):
        self.layers = list(layers)
        self.requires_input_grad = requires_input_grad

    def _children(self):
        for i, layer in enumerate(self.layers):
            yield str(i), layer

    def __iter__(self) -> Iterator[Module]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i: int) -> Module:
        return self.layers[i]

    def forward(self, x, train=True):
        for layer in self.layers:
            x = layer.forward(x, train)
        return x

    def backward(self, grad_out):
        # the first layer with parameters is the last one anybody needs a gradient from
        first = next((i for i, layer in enumerate(self.layers) if layer.parameters()), 0)
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            if i == first and not self.requires_input_grad and hasattr(layer, "backward_params"):
                layer.backward_params(grad_out)
                return None
            grad_out = layer.backward(grad_out)
        return grad_out

    def __repr__(self):
        inner = ",\n  ".join(repr(l) for l in self.layers)
        return f"Sequential(\n  {inner}\n)"


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function (no overflow for large |x|)."""
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    ex = np.exp(x[~pos])
    out[~pos] = ex / (1.0 + ex)
    return out


ACTIVATIONS = {"relu": ReLU, "leaky_relu": LeakyReLU, "sigmoid": Sigmoid, "tanh": Tanh, "gelu": GELU}


def mlp(sizes: Iterable[int], *, activation: str = "relu", init: str | None = None, dropout: float = 0.0,
        batchnorm: bool = False, seed: int = 0, dtype=np.float32) -> Sequential:
    """Linear -> [BatchNorm] -> activation -> [Dropout] ... -> Linear, from a list of widths.

    ``init`` defaults to He for ReLU-like activations and Xavier for sigmoid/tanh.
    """
    sizes = list(sizes)
    rng = np.random.default_rng(seed)
    if init is None:
        init = "he_normal" if activation in ("relu", "leaky_relu", "gelu") else "xavier_normal"
    layers: list[Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = i == len(sizes) - 2
        # a bias before BatchNorm is cancelled by its mean subtraction: leave it out
        layers.append(Linear(n_in, n_out, rng=rng, init=init, dtype=dtype, bias=not (batchnorm and not last)))
        if not last:
            if batchnorm:
                layers.append(BatchNorm1d(n_out, dtype=dtype))
            layers.append(ACTIVATIONS[activation]())
            if dropout > 0:
                layers.append(Dropout(dropout, seed=seed + i + 1))
    return Sequential(*layers)
