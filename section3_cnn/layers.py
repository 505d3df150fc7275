"""Convolution and pooling in NumPy, on section 2's Module protocol, vectorised with im2col.

Layout: channels-last, (N, H, W, C), inside the network. The reason is speed: with an
(N*H_out*W_out, kh*kw*C) patch matrix, one matrix product with the (kh*kw*C, F) weights
produces the output already in (N, H_out, W_out, F) order, so no layer ever transposes its
activations. Models take the usual (N, C, H, W) images and convert once with ChannelsLast.
Weights are stored as (kh, kw, C_in, C_out); ``torch_weight_layout`` converts to and from
PyTorch's (C_out, C_in, kh, kw).

Only whole-array NumPy operations: the patch matrix is a strided view copied once
(``as_strided``), and the backward col2im adds kh*kw shifted slices, never looping over
pixels or images.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from section2_optimization.layers import INITIALIZERS, Module, Parameter, write_grad


def pair(value: int | tuple[int, int], name: str = "size") -> tuple[int, int]:
    """An int or an (h, w) pair -> (h, w); kernel sizes, strides and paddings take either, as in torch."""
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, (int, np.integer)) for v in value):
        return int(value[0]), int(value[1])
    raise ValueError(f"{name} must be an int or an (h, w) pair of ints, got {value!r}")


def output_size(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """floor((size + 2*padding - kernel) / stride) + 1, the size of a convolution or pool output."""
    return (size + 2 * padding - kernel) // stride + 1


def windows(x: np.ndarray, kh: int, kw: int, stride: int | tuple[int, int]) -> np.ndarray:
    """A read-only strided view of every kh x kw window: (N, H, W, C) -> (N, Ho, Wo, kh, kw, C)."""
    n, h, w, c = x.shape
    th, tw = pair(stride, "stride")
    ho, wo = output_size(h, kh, th), output_size(w, kw, tw)
    sn, sh, sw, sc = x.strides
    return as_strided(x, shape=(n, ho, wo, kh, kw, c), strides=(sn, sh * th, sw * tw, sh, sw, sc),
                      writeable=False)


def im2col(x: np.ndarray, kh: int, kw: int, stride: int | tuple[int, int]) -> np.ndarray:
    """(N, H, W, C) -> patch matrix (N*Ho*Wo, kh*kw*C), one row per output pixel."""
    n, h, w, c = x.shape
    th, tw = pair(stride, "stride")
    ho, wo = output_size(h, kh, th), output_size(w, kw, tw)
    if c >= 4:
        return windows(x, kh, kw, stride).reshape(n * ho * wo, kh * kw * c)  # the one copy
    # with one or a few channels, a copy through the 6-D strided view moves a handful of bytes per inner
    # step; kh*kw*c slice copies into a (kh*kw*c, rows) buffer move whole image rows (about 3x faster than
    # the view, and 2x faster than writing the slices into the row-major matrix). The result is that
    # buffer's transpose: the same matrix, column-major, which BLAS multiplies without a copy.
    cols = np.empty((kh, kw, c, n, ho, wo), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            for k in range(c):
                cols[i, j, k] = x[:, i:i + th * ho:th, j:j + tw * wo:tw, k]
    return cols.reshape(kh * kw * c, n * ho * wo).T


def im2col_pool_order(x: np.ndarray, kh: int, kw: int) -> np.ndarray:
    """Stride-1 patch matrix with its rows in 2x2-window-major order, for an even output (2 Ho2, 2 Wo2):
    row (n, dh, dw, a, b) holds the patch of output pixel (2a + dh, 2b + dw). Each of the four window
    positions is then one contiguous block per image, which is what makes a following 2x2 max pool fast."""
    n, h, w, c = x.shape
    ho2, wo2 = output_size(h, kh) // 2, output_size(w, kw) // 2
    if c >= 4:
        sn, sh, sw, sc = x.strides
        view = as_strided(x, shape=(n, 2, 2, ho2, wo2, kh, kw, c),
                          strides=(sn, sh, sw, 2 * sh, 2 * sw, sh, sw, sc), writeable=False)
        return view.reshape(n * 4 * ho2 * wo2, kh * kw * c)
    cols = np.empty((kh, kw, c, n, 2, 2, ho2, wo2), dtype=x.dtype)   # few channels: column-major (see im2col)
    for dh in range(2):
        for dw in range(2):
            for i in range(kh):
                for j in range(kw):
                    for k in range(c):
                        cols[i, j, k, :, dh, dw] = x[:, dh + i:dh + i + 2 * ho2:2, dw + j:dw + j + 2 * wo2:2, k]
    return cols.reshape(kh * kw * c, n * 4 * ho2 * wo2).T


def pool_order_to_image(x: np.ndarray) -> np.ndarray:
    """(N, 2, 2, H/2, W/2, C) window-major -> the usual (N, H, W, C), a copy."""
    n, _, _, h2, w2, c = x.shape
    return x.transpose(0, 3, 1, 4, 2, 5).reshape(n, 2 * h2, 2 * w2, c)


def col2im(cols: np.ndarray, shape: tuple, kh: int, kw: int, stride: int | tuple[int, int]) -> np.ndarray:
    """Adjoint of im2col: sum every patch row back onto the (N, H, W, C) image it came from.

    Overlapping windows add up; that is kh*kw strided slice additions, whatever the image size.
    """
    n, h, w, c = shape
    th, tw = pair(stride, "stride")
    ho, wo = output_size(h, kh, th), output_size(w, kw, tw)
    patches = cols.reshape(n, ho, wo, kh, kw, c)
    out = np.zeros(shape, dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            out[:, i:i + th * ho:th, j:j + tw * wo:tw, :] += patches[:, :, :, i, j, :]
    return out


def add_bias(out: np.ndarray, bias: np.ndarray) -> None:
    """out (M, F) += bias (F,), in place, the same additions as ``out += bias``, about 3x faster for 8 channels.

    Broadcasting an F-vector over M rows runs NumPy's inner loop M times over F elements, and with F = 8 the
    per-loop overhead is most of the cost. Seen as (M / k, k * F) rows against the bias tiled k times, the
    inner loop covers k * F elements instead (k the largest divisor of M up to 64 // F).
    """
    m, f = out.shape
    k = max((d for d in range(1, max(1, 64 // f) + 1) if m % d == 0), default=1)
    if k == 1 or not out.flags.c_contiguous:
        out += bias
        return
    np.add(out.reshape(m // k, k * f), np.tile(bias, k), out=out.reshape(m // k, k * f))


def torch_weight_layout(weight: np.ndarray, to: str = "torch") -> np.ndarray:
    """(kh, kw, C_in, C_out) <-> PyTorch's (C_out, C_in, kh, kw)."""
    return weight.transpose(3, 2, 0, 1) if to == "torch" else weight.transpose(2, 3, 1, 0)


class ChannelsLast(Module):
    """(N, C, H, W) -> (N, H, W, C) at the network's entrance (a free view when C = 1)."""

    def forward(self, x, train=True):
        return x.transpose(0, 2, 3, 1)

    def backward(self, grad_out):
        return grad_out.transpose(0, 3, 1, 2)


class Conv2D(Module):
    """2-D convolution (cross-correlation, like torch), any kernel, stride and zero padding.

    x (N, H, W, C_in) -> (N, Ho, Wo, C_out), Ho = (H + 2 ph - kh) // sh + 1 (and likewise Wo). The kernel size,
    stride and padding are each an int or an (h, w) pair.

    ``pool_order=True`` is for a convolution followed by MaxPool2D(2) (build_cnn sets it): in training mode, when
    the stride is 1 and the output size even, forward returns the output in 2x2-window-major layout,
    (N, 2, 2, Ho/2, Wo/2, C_out), element [n, dh, dw, a, b] being output pixel (2a + dh, 2b + dw), and backward
    takes its gradient in that layout. MaxPool2D reads it as four contiguous blocks instead of four
    interleaved strided views, the same values and gradients (tested). Evaluation mode always returns (N, Ho, Wo, C).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int], *,
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0, bias: bool = True,
                 rng: np.random.Generator | None = None, init: str = "he_normal", dtype=np.float32,
                 pool_order: bool = False):
        kh, kw = pair(kernel_size, "kernel_size")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kh, self.kw = kh, kw
        self.stride, self.padding = pair(stride, "stride"), pair(padding, "padding")
        if min(kh, kw, *self.stride) < 1 or min(self.padding) < 0:
            raise ValueError(f"kernel {kh, kw} and stride {self.stride} must be >= 1, padding {self.padding} >= 0")
        rng = rng if rng is not None else np.random.default_rng(0)
        # initialised in torch's (out, in, kh, kw) layout so fan-in and fan-out mean the same thing
        w = INITIALIZERS[init]((out_channels, in_channels, kh, kw), rng=rng, dtype=dtype)
        self.weight = Parameter(np.ascontiguousarray(torch_weight_layout(w, to="ours")))
        self.bias = Parameter(np.zeros(out_channels, dtype=dtype)) if bias else None
        self.pool_order = pool_order

    def _own_parameters(self):
        yield "weight", self.weight
        if self.bias is not None:
            yield "bias", self.bias

    def _pad(self, x):
        ph, pw = self.padding
        if not (ph or pw):
            return x
        n, h, w, c = x.shape
        xp = np.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=x.dtype)   # np.pad is several times slower
        xp[:, ph:ph + h, pw:pw + w, :] = x
        return xp

    def forward(self, x, train=True):
        xp = self._pad(x)
        n = x.shape[0]
        ho, wo = output_size(xp.shape[1], self.kh, self.stride[0]), output_size(xp.shape[2], self.kw, self.stride[1])
        self._padded_shape = xp.shape
        self._pool_order = train and self.pool_order and self.stride == (1, 1) and ho % 2 == 0 and wo % 2 == 0
        if self._pool_order:
            self._cols = im2col_pool_order(xp, self.kh, self.kw)
        else:
            self._cols = im2col(xp, self.kh, self.kw, self.stride)                  # (N*Ho*Wo, kh*kw*C)
        out = self._cols @ self.weight.data.reshape(-1, self.out_channels)         # (N*Ho*Wo, F)
        if self.bias is not None:
            add_bias(out, self.bias.data)
        if self._pool_order:
            return out.reshape(n, 2, 2, ho // 2, wo // 2, self.out_channels)
        return out.reshape(n, ho, wo, self.out_channels)

    def backward_params(self, grad_out):
        g = grad_out.reshape(-1, self.out_channels)                                 # (N*Ho*Wo, F)
        write_grad(self.weight, lambda out: np.matmul(self._cols.T, g, out=out),   # (kh*kw*C, F)
                   view_shape=(-1, self.out_channels))
        if self.bias is not None:
            # a sum over rows as a matrix-vector product: BLAS does it 20x faster than g.sum(0)
            # on a tall, narrow (N*Ho*Wo, F) array
            write_grad(self.bias, lambda out: np.matmul(self._ones(len(g), g.dtype), g, out=out))
        return g

    def backward(self, grad_out):
        """dL/dx = col2im(g W^T), fused tap by tap: for each kernel offset (i, j) the product
        g @ W[i, j]^T is a contiguous (N*Ho*Wo, C) block added straight onto its shifted slice of
        the input gradient, which never materialises the (N*Ho*Wo, kh*kw*C) matrix."""
        g = self.backward_params(grad_out)
        if self._pool_order:          # rows in window-major order: back to image order for the shifted adds
            g = pool_order_to_image(grad_out).reshape(-1, self.out_channels)
        n, hp, wp, c = self._padded_shape
        sh, sw = self.stride
        ho, wo = output_size(hp, self.kh, sh), output_size(wp, self.kw, sw)
        taps = self.weight.data                                                     # (kh, kw, C, F)
        dx = np.zeros(self._padded_shape, dtype=g.dtype)
        for i in range(self.kh):
            for j in range(self.kw):
                dx[:, i:i + sh * ho:sh, j:j + sw * wo:sw, :] += (g @ taps[i, j].T).reshape(n, ho, wo, c)
        ph, pw = self.padding
        return dx[:, ph:hp - ph, pw:wp - pw, :] if (ph or pw) else dx

    def _ones(self, n: int, dtype) -> np.ndarray:
        cached = getattr(self, "_ones_cache", None)
        if cached is None or len(cached) != n or cached.dtype != dtype:
            cached = self._ones_cache = np.ones(n, dtype=dtype)
        return cached

    def __repr__(self):
        return (f"Conv2D({self.in_channels}, {self.out_channels}, kernel=({self.kh}, {self.kw}), "
                f"stride={self.stride}, padding={self.padding})")


class MaxPool2D(Module):
    """Max over k x k windows; the gradient goes to the first maximum of each window in
    row-major order (PyTorch's rule when values tie), and adds up where windows overlap.

    The kernel size and stride are each an int or an (h, w) pair (the stride defaults to the kernel size).
    The common 2x2, stride-2 case on even sizes takes a fast path: the four window corners are
    four strided views, so the max is three element-wise maxima and no patch copy is made. It also takes
    the (N, 2, 2, H/2, W/2, C) window-major layout of a Conv2D with pool_order=True, where the corners are
    contiguous blocks, and then returns its input gradient in that layout too.
    """

    def __init__(self, kernel_size: int | tuple[int, int] = 2, stride: int | tuple[int, int] | None = None):
        self.kernel = pair(kernel_size, "kernel_size")
        self.stride = pair(stride, "stride") if stride is not None else self.kernel
        if min(*self.kernel, *self.stride) < 1:
            raise ValueError(f"kernel {self.kernel} and stride {self.stride} must be >= 1")

    def _fast(self, shape) -> bool:
        return self.kernel == (2, 2) and self.stride == (2, 2) and shape[1] % 2 == 0 and shape[2] % 2 == 0

    def forward(self, x, train=True):
        self._shape = x.shape
        if x.ndim == 6:
            if self.kernel != (2, 2) or self.stride != (2, 2) or x.shape[1:3] != (2, 2):
                raise ValueError(f"the window-major (N, 2, 2, H/2, W/2, C) layout is for MaxPool2D(2) only, not {self}")
            corners = (x[:, 0, 0], x[:, 0, 1], x[:, 1, 0], x[:, 1, 1])
        elif self._fast(x.shape):
            corners = (x[:, 0::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 0::2], x[:, 1::2, 1::2])
        else:
            corners = None
        if corners is not None:
            out = np.maximum(np.maximum(corners[0], corners[1]), np.maximum(corners[2], corners[3]))
            # index of the first corner equal to the max: 0 if a, else 1 if b, else 2 if c, else 3
            not_a, not_b, not_c = (np.not_equal(corner, out).view(np.uint8) for corner in corners[:3])
            self._argmax = not_a * (1 + not_b * (1 + not_c))
            return out
        kh, kw = self.kernel
        win = windows(x, kh, kw, self.stride)                                       # (N, Ho, Wo, kh, kw, C)
        n, ho, wo, _, _, c = win.shape
        flat = win.reshape(n, ho, wo, kh * kw, c)
        self._argmax = flat.argmax(axis=3)                                          # (N, Ho, Wo, C)
        return np.take_along_axis(flat, self._argmax[:, :, :, None, :], axis=3)[:, :, :, 0, :]

    def backward(self, grad_out):
        ho, wo = grad_out.shape[1:3]
        (sh, sw), (kh, kw) = self.stride, self.kernel
        if len(self._shape) == 6:
            dx = np.empty(self._shape, dtype=grad_out.dtype)
            for index, (i, j) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
                np.multiply(self._argmax == index, grad_out, out=dx[:, i, j])
            return dx
        if self._fast(self._shape):
            n, h, w, c = self._shape
            dx = np.empty((n, h // 2, 2, w // 2, 2, c), dtype=grad_out.dtype)   # every entry written below
            for index, (i, j) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
                np.multiply(self._argmax == index, grad_out, out=dx[:, :, i, :, j, :])
            return dx.reshape(self._shape)
        zero = grad_out.dtype.type(0)
        dx = np.zeros(self._shape, dtype=grad_out.dtype)
        for i in range(kh):
            for j in range(kw):
                dx[:, i:i + sh * ho:sh, j:j + sw * wo:sw, :] += np.where(self._argmax == i * kw + j, grad_out, zero)
        return dx

    def __repr__(self):
        return f"MaxPool2D({self.kernel}, stride={self.stride})"


class AvgPool2D(Module):
    """Mean over kh x kw windows; each input receives grad / (kh*kw) from every window it is in. The kernel
    size and stride are each an int or an (h, w) pair (the stride defaults to the kernel size)."""

    def __init__(self, kernel_size: int | tuple[int, int] = 2, stride: int | tuple[int, int] | None = None):
        self.kernel = pair(kernel_size, "kernel_size")
        self.stride = pair(stride, "stride") if stride is not None else self.kernel
        if min(*self.kernel, *self.stride) < 1:
            raise ValueError(f"kernel {self.kernel} and stride {self.stride} must be >= 1")

    def forward(self, x, train=True):
        self._shape = x.shape
        return windows(x, *self.kernel, self.stride).mean(axis=(3, 4))

    def backward(self, grad_out):
        dx = np.zeros(self._shape, dtype=grad_out.dtype)
        ho, wo = grad_out.shape[1:3]
        (sh, sw), (kh, kw) = self.stride, self.kernel
        share = grad_out / grad_out.dtype.type(kh * kw)
        for i in range(kh):
            for j in range(kw):
                dx[:, i:i + sh * ho:sh, j:j + sw * wo:sw, :] += share
        return dx

    def __repr__(self):
        return f"AvgPool2D({self.kernel}, stride={self.stride})"
