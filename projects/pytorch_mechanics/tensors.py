"""How does PyTorch keep a tensor in memory? Storage and views, stride arithmetic, contiguity and
broadcasting, each claim checked by code: the script stops with an error if PyTorch ever behaves otherwise.

1. Storage vs view: a 3x4 tensor is 12 numbers in one flat storage. view, reshape (of a contiguous tensor),
   transpose, slicing and expand make new tensor headers (shape, stride, storage offset) over the SAME
   storage: no number moves. The base holds 0..11, so every element's value is its own storage index, and
   the check ``t[i, j] == offset + i * stride[0] + j * stride[1]`` is exact.
2. Contiguity: a transpose walks its storage out of order, so ``.view(12)`` fails with PyTorch's
   "view size is not compatible with input tensor's size and stride"; ``.contiguous().view(12)`` and
   ``.reshape(12)`` both work, and both copy here (a new data pointer), while ``reshape`` of a contiguous
   tensor copies nothing.
3. Broadcasting: shapes are aligned from the right; each pair of sizes must be equal or one of them 1 (the 1
   stretches, with stride 0, never a copy); a missing leading dimension counts as 1. Our own implementation
   of the rule is checked against torch.broadcast_shapes and the shape of an actual sum, including a pair
   that must fail.

Outputs in projects/pytorch_mechanics/runs/tensors/: views.md/.csv (shape, stride, offset, shared storage),
broadcasting.md/.csv, storage_layout.png (each view's elements labelled with their storage index),
broadcasting.png (the shape diagrams) and summary.json.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch

from projects.pytorch_mechanics import figures
from shared_utils import cli, runs, stats

CONTIGUITY_ERROR = "view size is not compatible with input tensor's size and stride"


def base_tensor() -> torch.Tensor:
    """3x4, values 0..11 in storage order: every element's value is its storage index."""
    return torch.arange(12.0).reshape(3, 4)


VIEWS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "base = arange(12).reshape(3, 4)": lambda b: b,
    "base.view(4, 3)": lambda b: b.view(4, 3),
    "base.reshape(2, 6)": lambda b: b.reshape(2, 6),
    "base.transpose(0, 1)": lambda b: b.transpose(0, 1),
    "base[:, 1:3]": lambda b: b[:, 1:3],
    "base[::2, ::3]": lambda b: b[::2, ::3],
    "base[:, :1].expand(3, 4)": lambda b: b[:, :1].expand(3, 4),
}


def storage_indices(t: torch.Tensor) -> torch.Tensor:
    """Each element's position in the storage from the header alone: offset + sum_k index_k * stride_k."""
    index = torch.full(t.shape, t.storage_offset(), dtype=torch.long)
    for dim, (size, stride) in enumerate(zip(t.shape, t.stride())):
        shape = [1] * t.dim()
        shape[dim] = size
        index = index + torch.arange(size).view(shape) * stride
    return index


def shares_storage(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


def layouts() -> list[dict]:
    """Shape, stride, offset, contiguity and storage sharing of every view in VIEWS, with the stride
    arithmetic checked element by element."""
    base = base_tensor()
    rows = []
    for name, make in VIEWS.items():
        t = make(base)
        index = storage_indices(t)
        assert torch.equal(t, index.to(t.dtype)), f"{name}: stride arithmetic does not give the stored values"
        assert shares_storage(t, base), f"{name} copied its data"
        rows.append({"tensor": name, "shape": tuple(t.shape), "stride": t.stride(), "offset": t.storage_offset(),
                     "contiguous": t.is_contiguous(), "shares_storage": True,
                     "first_element_bytes": t.data_ptr() - base.data_ptr(), "indices": index.tolist()})
    return rows


def contiguity() -> dict:
    """The view error on a transpose, and which fixes copy."""
    base = base_tensor()
    t = base.transpose(0, 1)
    try:
        t.view(12)
        message = None
    except RuntimeError as exc:
        message = str(exc)
    assert message is not None and CONTIGUITY_ERROR in message, f"expected the contiguity error, got {message!r}"
    by_contiguous, by_reshape = t.contiguous().view(12), t.reshape(12)
    expected = torch.tensor([0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11], dtype=base.dtype)
    assert torch.equal(by_contiguous, expected) and torch.equal(by_reshape, expected)
    facts = {
        "transpose_contiguous": t.is_contiguous(),
        "error": message.split(".")[0],
        "contiguous_view_copies": not shares_storage(by_contiguous, base),
        "reshape_of_transpose_copies": not shares_storage(by_reshape, base),
        "reshape_of_contiguous_copies": not shares_storage(base.reshape(12), base),
        "contiguous_of_contiguous_is_self": base.contiguous() is base,
        "flattened_order": by_reshape.int().tolist(),
    }
    assert facts["contiguous_view_copies"] and facts["reshape_of_transpose_copies"]
    assert not facts["reshape_of_contiguous_copies"] and facts["contiguous_of_contiguous_is_self"]
    return facts


def broadcast_shape(a: Sequence[int], b: Sequence[int]) -> tuple[int, ...]:
    """The broadcasting rule written out: align from the right, pad the shorter shape with 1s on the left,
    each pair must be equal or contain a 1 (which stretches). Raises ValueError naming the clash."""
    n = max(len(a), len(b))
    pa, pb = (1,) * (n - len(a)) + tuple(a), (1,) * (n - len(b)) + tuple(b)
    out = []
    for dim, (x, y) in enumerate(zip(pa, pb)):
        if x != y and 1 not in (x, y):
            raise ValueError(f"sizes {x} and {y} clash at dimension {dim - n} (counted from the right)")
        out.append(max(x, y) if 0 not in (x, y) else 0)
    return tuple(out)


CASES: list[tuple[tuple[int, ...], tuple[int, ...]]] = [
    ((3, 4), (4,)),          # a row added to every row
    ((3, 1), (1, 4)),        # an outer sum: both stretch
    ((2, 3, 4), (3, 1)),     # a missing leading dimension and a stretched column
    ((5, 1, 4), (3, 1)),     # both operands stretch, in different dimensions
    ((4, 3), ()),            # a scalar stretches everywhere
    ((3, 4), (3,)),          # fails: the trailing sizes 4 and 3 clash
]


def broadcasting(cases=CASES) -> list[dict]:
    """Each case's result by our rule, by torch.broadcast_shapes and by an actual sum; a failing case must
    fail all three ways. Also: the stretched operand is a stride-0 view, not a copy."""
    rows = []
    for a, b in cases:
        try:
            ours, error = broadcast_shape(a, b), None
        except ValueError as exc:
            ours, error = None, str(exc)
        try:
            theirs = tuple(torch.broadcast_shapes(a, b))
            summed = tuple((torch.zeros(a) + torch.zeros(b)).shape)
        except RuntimeError:
            theirs = summed = None
        assert ours == theirs == summed, f"{a} with {b}: ours {ours}, torch {theirs}, sum {summed}"
        if ours is not None:
            stretched = torch.zeros(b).expand(ours)
            assert 0 in stretched.stride() or stretched.numel() == torch.zeros(b).numel()
        rows.append({"a": a, "b": b, "result": ours, "error": error})
    return rows


def _shape_text(shape) -> str:
    return "()" if shape == () else "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def main(argv=None):
    p = cli.parser(__doc__, trains=False)
    args = cli.parse(p, argv)
    run = runs.RunDir(__file__, "tensors", args)
    rows, facts, cases = layouts(), contiguity(), broadcasting()
    stats.write_table(["tensor", "shape", "stride", "storage offset", "contiguous", "shares base's storage"],
                      [[r["tensor"], _shape_text(r["shape"]), _shape_text(r["stride"]), r["offset"], r["contiguous"],
                        r["shares_storage"]] for r in rows], run / "views",
                      caption="Every view of the 3x4 base is a new header over the same 12 stored numbers")
    stats.write_table(["a", "b", "result", "why"],
                      [[_shape_text(c["a"]), _shape_text(c["b"]), _shape_text(c["result"]) if c["result"] else "error",
                        c["error"] or "each pair equal or 1"] for c in cases], run / "broadcasting",
                      caption="Broadcasting: our rule, torch.broadcast_shapes and an actual sum agree on every case")
    figures.index_grids([{"values": r["indices"], "title": f"{r['tensor']}\nstride {_shape_text(r['stride'])}, "
                                                          f"offset {r['offset']}"} for r in rows],
                      run / "storage_layout.png", title="Which stored number each element reads "
                                                        "(cell text: its storage index)",
                      colorbar_label="storage index (elements from the start)")
    figures.shape_diagrams(cases, run / "broadcasting.png",
                         title="Broadcasting: shapes aligned from the right; size-1 dimensions stretch")
    run.summary(views=len(rows), **{k: v for k, v in facts.items() if k != "flattened_order"},
                broadcast_cases=len(cases), broadcast_failures=sum(c["result"] is None for c in cases))
    if not args.quiet:
        for r in rows:
            print(f"{r['tensor']:34s} shape {_shape_text(r['shape']):8s} stride {_shape_text(r['stride']):8s} "
                  f"offset {r['offset']}  contiguous {r['contiguous']}")
        print(f"transpose.view(12): RuntimeError '{facts['error']}'; .contiguous().view(12) copies: "
              f"{facts['contiguous_view_copies']}; .reshape(12) copies: {facts['reshape_of_transpose_copies']} "
              f"(of a contiguous tensor: {facts['reshape_of_contiguous_copies']})")
        for c in cases:
            print(f"{_shape_text(c['a'])} + {_shape_text(c['b'])} -> {c['error'] or _shape_text(c['result'])}")
    print(f"all claims held; outputs in {run.path}")
    return {"views": rows, "contiguity": facts, "broadcasting": cases}


if __name__ == "__main__":
    cli.run(main)
