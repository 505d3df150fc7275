"""The section 3 CNN: Conv -> ReLU -> Pool -> Conv -> ReLU -> Pool -> FC -> ReLU -> FC.

With max pooling the layers run as Conv -> MaxPool -> ReLU, the same function and gradients (see build_cnn).

    model = build_cnn(pool="max", seed=0)        # takes (N, 1, 28, 28) float32 images
    logits = model.forward(x)                     # (N, 10)

Channel counts are kept small on purpose: on a 2-core CPU every multiply counts, and 8/16
filters already separate MNIST's digits; the widths are arguments for anyone with more time.

Layouts. Activations are channels-last inside the network, so Flatten orders the first fully connected
layer's input rows as (h, w, c): row h * W * C + w * C + c. PyTorch flattens (c, h, w). Linear weights are
(in, out) here and (out, in) in torch; conv weights (kh, kw, C_in, C_out) here and (C_out, C_in, kh, kw) there.
``torch_state_dict`` and ``load_torch_state_dict`` do all three conversions, so the same weights run in both
frameworks (NumPy arrays only; no torch import):

    state = torch_state_dict(model)                   # names and layouts of the matching nn.Sequential
    net.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    load_torch_state_dict(model, {k: v.numpy() for k, v in net.state_dict().items()})
"""
from __future__ import annotations

import numpy as np

from section2_optimization import layers
from section3_cnn.layers import AvgPool2D, ChannelsLast, Conv2D, MaxPool2D, torch_weight_layout

POOLS = {"max": MaxPool2D, "avg": AvgPool2D}


def build_cnn(*, pool: str = "max", channels: tuple[int, int] = (8, 16), hidden: int = 128, kernel: int = 3,
              dropout: float = 0.0, image_size: int = 28, in_channels: int = 1, classes: int = 10, seed: int = 0,
              dtype=np.float32) -> layers.Sequential:
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {sorted(POOLS)}, got {pool!r}")
    if kernel < 1 or kernel % 2 == 0:
        # padding kernel // 2 keeps an odd kernel's output at the input size; an even one would shift
        # it by a pixel and break the two-pools-to-image_size/4 arithmetic of the first Linear layer
        raise ValueError(f"kernel must be an odd size (1, 3, 5, 7, ...) so 'same' padding keeps the image size, "
                         f"got {kernel}")
    rng = np.random.default_rng(seed)
    c1, c2 = channels
    side = image_size // 4  # two 2x2 pools; 'same' padding keeps the conv outputs at the input size
    def activate_and_pool():
        # max pooling commutes with ReLU (a monotone function): relu(max(window)) = max(relu(window)), and the
        # gradient reaches the same first maximum, so pooling first is exactly the same network (tested) with a
        # ReLU over a quarter of the values: 8% less time per training step on the 2-core benchmark machine.
        # Average pooling does not commute with ReLU, so it keeps the textbook order. Before a max pool the
        # convolutions train with pool_order=True: their output reaches the pool in 2x2-window-major layout
        # (see Conv2D), the same values and gradients with the pool's four corners contiguous in memory.
        return [POOLS[pool](2), layers.ReLU()] if pool == "max" else [layers.ReLU(), POOLS[pool](2)]

    return layers.Sequential(
        ChannelsLast(),
        Conv2D(in_channels, c1, kernel, padding=kernel // 2, rng=rng, dtype=dtype, pool_order=pool == "max"),
        *activate_and_pool(),
        Conv2D(c1, c2, kernel, padding=kernel // 2, rng=rng, dtype=dtype, pool_order=pool == "max"),
        *activate_and_pool(),
        layers.Flatten(),
        layers.Linear(c2 * side * side, hidden, rng=rng, dtype=dtype),
        layers.ReLU(),
        *([layers.Dropout(dropout, seed=seed)] if dropout else []),
        layers.Linear(hidden, classes, rng=rng, dtype=dtype),
    )


def _torch_layout_plan(model: layers.Sequential) -> list[tuple[str, str, object]]:
    """(our name, torch name, layer) for every parameterised layer. The matching nn.Sequential has the same
    layers minus ChannelsLast (torch takes (N, C, H, W) as it is), so its indices are one lower after it."""
    plan, offset, channels = [], 0, None
    for i, layer in enumerate(model):
        if isinstance(layer, ChannelsLast):
            offset += 1
            continue
        if isinstance(layer, Conv2D):
            channels = layer.out_channels
        if isinstance(layer, (Conv2D, layers.Linear)):
            plan.append((str(i), str(i - offset), layer))
        if isinstance(layer, layers.Flatten):
            plan.append(("flatten", "", channels))
    return plan


def _flat_shape(in_features: int, channels: int) -> tuple[int, int, int]:
    side = int(round((in_features / channels) ** 0.5))
    if channels * side * side != in_features:
        raise ValueError(f"a first Linear of {in_features} inputs is not {channels} channels of a square map")
    return side, side, channels


def torch_state_dict(model: layers.Sequential) -> dict[str, np.ndarray]:
    """The model's weights under the names and in the layouts of the equivalent torch nn.Sequential
    (Conv2d ... Flatten, Linear ...), the first Linear's input rows reordered from (h, w, c) to (c, h, w)."""
    out, flat = {}, None
    for ours, theirs, layer in _torch_layout_plan(model):
        if ours == "flatten":
            flat = layer
            continue
        if isinstance(layer, Conv2D):
            w = torch_weight_layout(layer.weight.data)
        else:
            w = layer.weight.data
            if flat is not None:                      # the first Linear after Flatten
                h, wd, c = _flat_shape(layer.in_features, flat)
                w = w.reshape(h, wd, c, -1).transpose(2, 0, 1, 3).reshape(h * wd * c, -1)
                flat = None
            w = w.T
        out[f"{theirs}.weight"] = np.ascontiguousarray(w)
        if layer.bias is not None:
            out[f"{theirs}.bias"] = layer.bias.data.copy()
    return out


def load_torch_state_dict(model: layers.Sequential, state: dict[str, np.ndarray]) -> layers.Sequential:
    """The inverse of torch_state_dict: load a torch nn.Sequential's weights (as NumPy arrays) into the model."""
    flat = None
    for ours, theirs, layer in _torch_layout_plan(model):
        if ours == "flatten":
            flat = layer
            continue
        w = np.asarray(state[f"{theirs}.weight"])
        if isinstance(layer, Conv2D):
            w = torch_weight_layout(w, to="ours")
        else:
            w = w.T
            if flat is not None:
                h, wd, c = _flat_shape(layer.in_features, flat)
                w = w.reshape(c, h, wd, -1).transpose(1, 2, 0, 3).reshape(h * wd * c, -1)
                flat = None
        if w.shape != layer.weight.data.shape:
            raise ValueError(f"{theirs}.weight has shape {w.shape} here, the model needs {layer.weight.data.shape}")
        layer.weight.data[...] = w
        if layer.bias is not None:
            layer.bias.data[...] = np.asarray(state[f"{theirs}.bias"])
    return model


def conv_layers(model: layers.Sequential) -> list[tuple[int, Conv2D]]:
    """(index, layer) of every convolution, in order."""
    return [(i, layer) for i, layer in enumerate(model) if isinstance(layer, Conv2D)]


def architecture(*, pool: str, channels: tuple[int, int], hidden: int, kernel: int,
                 dropout: float = 0.0) -> dict[str, np.ndarray]:
    """The build_cnn arguments as plain arrays, saved in every checkpoint beside the weights."""
    return {"meta_pool": np.array(pool), "meta_channels": np.array(channels, dtype=np.int64),
            "meta_hidden": np.array(hidden, dtype=np.int64), "meta_kernel": np.array(kernel, dtype=np.int64),
            "meta_dropout": np.array(dropout, dtype=np.float64)}


def checked_architecture(state: dict[str, np.ndarray]) -> dict:
    """The build_cnn arguments a checkpoint describes, each checked (type, range, and agreement with the
    weight shapes stored beside it) before anything is allocated from them."""
    def scalar(name, kinds):
        value = np.asarray(state.get(name))
        if value.ndim != 0 or value.dtype.kind not in kinds:
            raise ValueError(f"{name} must be a single {'integer' if kinds == 'iu' else 'value'}")
        return value.item()

    pool = str(np.asarray(state.get("meta_pool")))
    if pool not in POOLS:
        raise ValueError(f"meta_pool must be one of {sorted(POOLS)}, got {pool[:40]!r}")
    channels = np.asarray(state.get("meta_channels"))
    if channels.shape != (2,) or channels.dtype.kind not in "iu" or (channels < 1).any():
        raise ValueError("meta_channels must be two positive integers")
    hidden, kernel = scalar("meta_hidden", "iu"), scalar("meta_kernel", "iu")
    dropout = float(scalar("meta_dropout", "f")) if "meta_dropout" in state else 0.0
    if hidden < 1 or kernel < 1 or kernel % 2 == 0 or not 0.0 <= dropout < 1.0:
        raise ValueError(f"hidden {hidden}, kernel {kernel} (odd, >= 1) or dropout {dropout} (in [0, 1)) is out of range")
    c1, c2 = (int(c) for c in channels)
    expected = {"1.weight": (kernel, kernel, 1, c1), "4.weight": (kernel, kernel, c1, c2),
                "8.weight": (c2 * 7 * 7, hidden)}
    for key, shape in expected.items():
        if key not in state or tuple(state[key].shape) != shape:
            raise ValueError(f"{key} does not match the architecture it describes")
    return {"pool": pool, "channels": (c1, c2), "hidden": int(hidden), "kernel": int(kernel), "dropout": dropout}


def load_cnn(path, make_one: str = "python section3_cnn/train_mnist_numpy.py"):
    """Rebuild the CNN a checkpoint describes and load its weights; a user-fixable problem
    (missing, corrupt or foreign file) is a UserError that names the command making one."""
    from pathlib import Path

    from shared_utils.errors import UserError
    from shared_utils.runs import load_npz

    path = Path(path)
    if not path.is_file():
        raise UserError(f"no checkpoint at {path}; make one with `{make_one}`")
    state = load_npz(path)
    if "meta_channels" not in state:
        raise UserError(f"{path} is not a section 3 CNN checkpoint (no architecture inside); "
                        f"make one with `{make_one}`")
    try:
        arch = checked_architecture(state)
    except ValueError as exc:
        raise UserError(f"{path} describes no valid CNN ({exc}); make one with `{make_one}`") from None
    model = build_cnn(**arch)
    try:
        model.load_state_dict(state)
    except ValueError as exc:
        raise UserError(f"{path} does not match the CNN it describes ({exc}); make one with `{make_one}`") from None
    return model
