"""projects/attention_transformers part A: attention written from tensor operations equals PyTorch's own
(float64, max error 1e-10, masks included), its gradients pass gradcheck, and without positions it cannot tell
the order of its inputs."""
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from projects.attention_transformers import attention as att  # noqa: E402

TOL = 1e-10


def rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def random_keep(L, S, seed=0):
    keep = torch.rand(L, S, generator=torch.Generator().manual_seed(seed)) > 0.4
    keep[:, 0] = True                                   # every query keeps a key (PyTorch gives NaN otherwise)
    return keep


@pytest.mark.parametrize("case", ["plain", "mask", "causal", "mask+causal"])
def test_scaled_dot_product_attention_equals_torch(case):
    q, k, v = rand(2, 3, 5, 8, seed=1), rand(2, 3, 7, 8, seed=2), rand(2, 3, 7, 6, seed=3)
    if "causal" in case:
        k, v = k[:, :, :5], v[:, :, :5]
    S = k.shape[2]
    keep = random_keep(5, S) if "mask" in case else None
    ours, weights = att.scaled_dot_product_attention(q, k, v, mask=keep, causal="causal" in case)
    full = keep
    if "causal" in case:
        lower = torch.ones(5, S, dtype=torch.bool).tril()
        full = lower if full is None else full & lower
    theirs = F.scaled_dot_product_attention(q, k, v, attn_mask=full)
    assert (ours - theirs).abs().max() < TOL
    assert torch.allclose(weights.sum(-1), torch.ones(2, 3, 5, dtype=torch.float64))
    if full is not None:
        assert (weights[..., ~full] == 0).all()          # hidden keys get exactly zero weight


def test_a_query_with_every_key_hidden_gets_zeros_not_nan():
    q, k, v = rand(1, 2, 4), rand(1, 3, 4), rand(1, 3, 4)
    keep = torch.tensor([[True, False, True], [False, False, False]])
    out, weights = att.scaled_dot_product_attention(q, k, v, mask=keep)
    assert torch.isfinite(out).all() and (out[0, 1] == 0).all() and (weights[0, 1] == 0).all()


@pytest.mark.parametrize("masks", ["none", "padding", "causal", "padding+attn"])
def test_multi_head_attention_equals_nn_multiheadattention_with_the_same_weights(masks):
    torch.manual_seed(0)
    ours = att.MultiHeadAttention(dim=12, heads=3).double()
    theirs = torch.nn.MultiheadAttention(12, 3, batch_first=True, dtype=torch.float64)
    theirs.load_state_dict(ours.state_dict())           # the same parameter names and shapes
    x = rand(4, 6, 12, seed=5)
    padding = torch.zeros(4, 6, dtype=torch.bool)
    padding[1, 4:] = padding[3, 2:] = True
    kw, tkw = {}, {}
    if "padding" in masks:
        kw["key_padding"], tkw["key_padding_mask"] = padding, padding
    if masks == "causal":
        kw["causal"] = True
        tkw["attn_mask"] = torch.ones(6, 6, dtype=torch.bool).triu(1)     # torch's bool mask: True = hidden
    if "attn" in masks:
        keep = random_keep(6, 6, seed=9)
        kw["mask"], tkw["attn_mask"] = keep, ~keep
    out, weights = ours(x, **kw)
    ref, ref_weights = theirs(x, x, x, need_weights=True, average_attn_weights=False, **tkw)
    assert (out - ref).abs().max() < TOL
    assert (weights - ref_weights).abs().max() < TOL


def test_attention_gradients_pass_gradcheck():
    q, k, v = (rand(1, 2, 4, 3, seed=s).requires_grad_() for s in (1, 2, 3))
    keep = random_keep(4, 4, seed=4)
    fn = lambda q, k, v: att.scaled_dot_product_attention(q, k, v, mask=keep, causal=True)[0]  # noqa: E731
    assert torch.autograd.gradcheck(fn, (q, k, v), eps=1e-6, atol=1e-8)
    mha = att.MultiHeadAttention(6, 2).double()
    x = rand(2, 5, 6, seed=7).requires_grad_()
    assert torch.autograd.gradcheck(lambda x: mha(x)[0], (x,), eps=1e-6, atol=1e-8)


def test_encoder_block_equals_a_pre_ln_transformer_encoder_layer():
    torch.manual_seed(1)
    ours = att.EncoderBlock(dim=8, heads=2, hidden=16).double()
    theirs = torch.nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, activation="relu",
                                              batch_first=True, norm_first=True, dtype=torch.float64).eval()
    rename = {"attn.": "self_attn.", "ff1.": "linear1.", "ff2.": "linear2."}
    state = {}
    for name, value in ours.state_dict().items():
        for a, b in rename.items():
            name = name.replace(a, b) if name.startswith(a) else name
        state[name] = value
    theirs.load_state_dict(state)
    x = rand(3, 5, 8, seed=2)
    padding = torch.zeros(3, 5, dtype=torch.bool)
    padding[0, 3:] = True
    out = ours(x, key_padding=padding)
    ref = theirs(x, src_key_padding_mask=padding)
    keep = ~padding[0]
    assert (out[1:] - ref[1:]).abs().max() < TOL and (out[0, keep] - ref[0, keep]).abs().max() < TOL


def test_without_positions_the_encoder_is_permutation_equivariant_and_with_them_it_is_not():
    torch.manual_seed(2)
    block = att.EncoderBlock(dim=8, heads=2, hidden=16).double()
    x = rand(2, 7, 8, seed=3)
    perm = torch.randperm(7)
    assert (block(x[:, perm]) - block(x)[:, perm]).abs().max() < TOL
    pos = att.PositionalEncoding("sinusoidal", 16, 8)
    assert (block(pos(x[:, perm])) - block(pos(x))[:, perm]).abs().max() > 1e-3


def test_sinusoidal_encoding_values_and_the_other_kinds():
    pe = att.sinusoidal_encoding(50, 6, dtype=torch.float64)
    p = torch.arange(50, dtype=torch.float64)
    assert torch.allclose(pe[:, 0], torch.sin(p)) and torch.allclose(pe[:, 1], torch.cos(p))
    assert torch.allclose(pe[:, 4], torch.sin(p / 10000 ** (4 / 6)))
    assert len(torch.unique(pe.round(decimals=6), dim=0)) == 50           # every position distinct
    learned = att.PositionalEncoding("learned", 10, 6)
    assert learned(torch.zeros(1, 4, 6)).shape == (1, 4, 6) and learned.table.requires_grad
    assert torch.equal(att.PositionalEncoding("none", 10, 6)(torch.ones(1, 4, 6)), torch.ones(1, 4, 6))
    with pytest.raises(ValueError):
        learned(torch.zeros(1, 11, 6))


def test_encoders_and_read_out_shapes_and_what_each_can_see():
    torch.manual_seed(3)
    tokens = torch.randint(0, 20, (4, 9))
    enc = att.TransformerEncoder(20, dim=16, heads=2, hidden=32, layers=2, max_len=16)
    assert enc(tokens).shape == (4, 9, 16)
    maps = enc.attention_maps()
    assert len(maps) == 2 and maps[0].shape == (4, 2, 9, 9) and not maps[0].requires_grad
    # causal: the first positions' states do not depend on later tokens
    changed = tokens.clone()
    changed[:, 6:] = (changed[:, 6:] + 1) % 20
    assert torch.allclose(enc(tokens, causal=True)[:, :6], enc(changed, causal=True)[:, :6], atol=1e-6)
    for encoder, dim in ((enc, 16), (att.LSTMEncoder(20, 12), 12), (att.BagEncoder(20, 12, 24), 12)):
        assert att.ReadOut(encoder, dim, classes=5)(tokens).shape == (4, 5)
    bag = att.ReadOut(att.BagEncoder(20, 12, 24), 12, classes=5)
    perm = torch.randperm(9)
    assert torch.allclose(bag(tokens), bag(tokens[:, perm]), atol=1e-6)    # order-blind by construction
