"""projects/attention_transformers parts B and C: the reversal task and its models, the token batches, the
sentence polarity loader, tokenisation round trips, NB-SVM, the frozen MiniLM vectors against
sentence-transformers, the seeded splits; quick runs of both scripts and their bad input."""
import io
import json
import tarfile

import numpy as np
import pytest

from shared_utils.data import sequences as seq
from shared_utils.data import sentence_polarity as sp
from shared_utils.errors import UserError
from tests.conftest import DATA_DIR, assert_user_error, requires, run_script, sizes

torch = pytest.importorskip("torch")

from projects.attention_transformers import reversal, sentiment  # noqa: E402
from projects.attention_transformers import text as tx  # noqa: E402
from shared_utils.pytorch.pipeline import TokenBatches  # noqa: E402

REVERSAL = "projects/attention_transformers/reversal.py"
SENTIMENT = "projects/attention_transformers/sentiment.py"


# --------------------------------------------------------------------------- part B
def test_reversal_task_writes_the_tokens_backwards_at_the_blanks():
    x, y = seq.reversal_task(500, vocab=7, length=5, seed=3)
    assert x.shape == (500, 11) and y.shape == (500, 5)
    assert (x[:, 5] == 7).all() and (x[:, 6:] == 8).all()              # separator, then blanks
    assert np.array_equal(y, x[:, 4::-1])
    assert np.array_equal(seq.reversal_task(500, vocab=7, length=5, seed=3)[0], x)
    with pytest.raises(UserError, match="at least 2 tokens"):
        seq.reversal_task(3, vocab=1, length=5)


@pytest.mark.parametrize("model", ["transformer, no positions", "bag of embeddings"])
def test_models_without_positions_give_every_blank_the_same_answer(model):
    """The reason they fail: blanks are identical tokens, and without positions identical tokens are
    indistinguishable (permutation equivariance), whatever the weights."""
    torch.manual_seed(0)
    net = reversal.sized(model, 16, 8, 20_000).eval()
    x, _ = seq.reversal_task(4, vocab=16, length=8, seed=1)
    logits = net(torch.from_numpy(x))                                   # (N, vocab, L)
    assert torch.allclose(logits, logits[:, :, :1].expand_as(logits), atol=1e-5)
    net = reversal.sized("transformer", 16, 8, 20_000).eval()
    logits = net(torch.from_numpy(x))
    assert (logits - logits[:, :, :1]).abs().max() > 1e-3               # positions break the tie


def test_every_model_gets_the_same_parameter_budget():
    from shared_utils.pytorch.models import count_parameters

    counts = [count_parameters(reversal.sized(m, 16, 32, 70_000)) for m in reversal.MODELS]
    assert all(abs(c - 70_000) / 70_000 < 0.05 for c in counts), counts


@sizes("--models", "transformer", "LSTM", "bag of embeddings", "--train-size", "128",
       models=(("transformer", "LSTM", "bag of embeddings"), reversal.MODELS))
def test_reversal_quick_run_writes_table_positions_and_attention_maps(tmp_path, size):
    result = run_script(REVERSAL, "--quick", *size.flags, "--quiet", "--seeds", "0", "1", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    root = tmp_path / "reversal"
    for name in ("accuracy_by_position.png", "attention_maps.png", "findings.json", "table.md"):
        assert (root / name).stat().st_size > 0, name
    findings = json.loads((root / "findings.json").read_text())
    assert set(findings["accuracy"]) == {f"{m}, L=6" for m in size.expect["models"]}
    assert "LSTM, L=6" in findings["transformer_minus"]                  # paired by seed with two seeds
    summary = json.loads((root / "transformer_L_6" / "seed_0" / "summary.json").read_text())
    assert 0.0 <= summary["test_token_acc"] <= 1.0 and summary["parameters"] == pytest.approx(6000, rel=0.2)


# --------------------------------------------------------------------------- token batches
def test_token_batches_cover_every_example_once_cut_to_length_and_resume():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 30, 500)
    tokens = np.zeros((500, 30), np.int64)
    for i, n in enumerate(lengths):
        tokens[i, :n] = rng.integers(1, 100, n)
    labels = np.arange(500)
    loader = TokenBatches(tokens, labels, batch_size=32, seed=5, bucket=4)
    seen = []
    for x, y in loader:
        assert x.shape[1] == lengths[y.numpy()].max()                    # no column of pure padding
        assert torch.equal(x, torch.from_numpy(tokens[y.numpy(), :x.shape[1]]))
        seen += y.tolist()
    assert sorted(seen) == list(range(500)) and len(loader) == 16
    state = loader.state_dict()
    ahead = [y for _, y in loader]
    loader.load_state_dict(state)
    assert all(torch.equal(a, b) for a, (_, b) in zip(ahead, loader))   # a resumed epoch draws the same batches
    padded = sum(x.numel() for x, _ in TokenBatches(tokens, labels, batch_size=32, seed=5))
    assert padded < 0.75 * 500 * 30                                      # bucketing by length saves padding


# --------------------------------------------------------------------------- data and tokenisation
@requires("polarity")
def test_the_real_polarity_data_loads_balanced():
    texts, labels = sp.load_sentences(DATA_DIR, download_ok=False)
    assert len(texts) == 10_662 and labels.sum() == 5331
    assert texts[0].startswith("the rock is destined")


def test_polarity_files_download_extract_and_refuse_bad_files(tmp_path, monkeypatch):
    pos = "a fine film .\nthé best\n".encode("latin-1")                  # the original files are Latin-1
    neg = b"dull .\n"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in (("rt-polarity.pos", pos), ("rt-polarity.neg", neg), ("../escape", b"x")):
            info = tarfile.TarInfo(f"rt-polaritydata/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    source = tmp_path / "mirror" / "rt-polaritydata.tar.gz"
    source.parent.mkdir()
    source.write_bytes(buf.getvalue())
    from shared_utils.data.fetch import file_digest

    monkeypatch.setattr(sp, "POLARITY_URLS", (source.as_uri(),))
    monkeypatch.setattr(sp, "POLARITY_SHA256", file_digest(source))
    texts, labels = sp.load_sentences(tmp_path / "data", quiet=True)
    assert texts == ["a fine film .", "thé best", "dull ."] and labels.tolist() == [1, 1, 0]
    assert not (tmp_path / "escape").exists()                           # only the two text files extracted
    (tmp_path / "data" / "rt-polaritydata" / "rt-polarity.neg").write_bytes(b"\x00\x01binary")
    with pytest.raises(UserError, match="binary"):
        sp.load_sentences(tmp_path / "data")
    monkeypatch.setattr(sp, "POLARITY_SHA256", "0" * 64)
    with pytest.raises(UserError, match="not found in .*download failed"):
        sp.load_sentences(tmp_path / "other", quiet=True)


def test_word_vocabulary_round_trip():
    texts = ["a gripping , funny film", "not funny at all !"]
    vocab = tx.WordVocab.build(texts)
    ids = vocab.encode(texts, max_len=8)
    assert ids.shape == (2, 8) and (ids[1, 5:] == tx.PAD).all()
    assert vocab.decode(ids) == texts
    assert vocab.encode(["unseen words"], 4)[0].tolist() == [tx.UNK, tx.UNK, tx.PAD, tx.PAD]


@requires("polarity")
def test_minilm_wordpiece_round_trip_on_real_sentences():
    tokenizer, _ = tx.load_pretrained(tx.resolve_model(None))
    texts, _ = sp.load_sentences(DATA_DIR, download_ok=False)
    sample = [t for t in texts[::50] if t.isascii()][:150]
    ids = tx.tokenize(tokenizer, sample, max_len=512)
    decoded = tokenizer.batch_decode(ids, skip_special_tokens=True)
    unk = tokenizer.unk_token_id
    checked = [(s, d) for s, d, row in zip(sample, decoded, ids) if unk not in row]
    assert len(checked) > 100
    assert all("".join(s.split()) == "".join(d.split()) for s, d in checked)     # lossless up to spaces


def test_minilm_sentence_vectors_equal_sentence_transformers():
    st = pytest.importorskip("sentence_transformers")
    path = tx.resolve_model(None)
    texts = ["a gripping , funny film", "not funny at all !", "the plot is thin but the actors are great ."]
    tokenizer, encoder = tx.load_pretrained(path)
    ours = tx.sentence_embeddings(tokenizer, encoder, texts, max_len=64, device="cpu")
    theirs = st.SentenceTransformer(path, device="cpu").encode(texts, normalize_embeddings=True)
    assert np.abs(ours - theirs).max() < 1e-5


def test_nbsvm_log_count_ratios_and_a_separable_problem():
    from scipy.sparse import csr_matrix

    x = csr_matrix(np.array([[1, 0, 2], [1, 0, 0], [0, 1, 0], [0, 3, 1]]))
    y = np.array([1, 1, 0, 0])
    model = tx.NBSVM().fit(x, y)
    p, q = 1 + np.array([2, 0, 1]), 1 + np.array([0, 2, 1])              # binarised counts + alpha
    assert np.allclose(model.r, np.log((p / p.sum()) / (q / q.sum())))
    assert model.predict(x).tolist() == [1, 1, 0, 0]


def test_splits_are_stratified_disjoint_and_budgets_nested():
    labels = np.repeat([0, 1], [600, 400])
    test, pool = sentiment.split(labels, seed=2, test_share=0.1)
    assert len(test) == 100 and labels[test].sum() == 40 and not set(test) & set(pool)
    assert len(pool) == 900 == sentiment.pool_size(labels, 0.1)
    for budget in (10, 50, 250):
        assert abs(labels[pool[:budget]].mean() - 0.4) <= 1.0 / budget + 1e-9     # every prefix keeps the balance
    again, _ = sentiment.split(labels, seed=2, test_share=0.1)
    assert np.array_equal(again, test) and not np.array_equal(sentiment.split(labels, 3, 0.1)[0], test)


# --------------------------------------------------------------------------- part C runs and bad input
@requires("polarity")
def test_sentiment_quick_run_scores_every_method_and_draws_attention(tmp_path):
    result = run_script(SENTIMENT, "--quick", "--quiet", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    root = tmp_path / "sentiment"
    findings = json.loads((root / "findings.json").read_text())
    assert set(findings["accuracy"]) == {f"{m}, 40 labels" for m in sentiment.METHODS}
    for name in ("accuracy_vs_labels.png", "attention_maps.png", "accuracy.md"):
        assert (root / name).stat().st_size > 0, name
    saved = json.loads((tmp_path / "sentiment" / "MiniLM_fine-tuned_40_labels" / "seed_0" / "attention.json")
                       .read_text())
    weights = np.array(saved["sentences"][0]["weights"])
    assert np.allclose(weights.sum(1), 1.0, atol=1e-3)                 # attention rows are distributions
    assert saved["sentences"][0]["tokens"][0] == "[CLS]"


@requires("polarity")
@pytest.mark.parametrize("args,fragment", [
    (["--model", "no-such-org/no-such-model"], "run without --model to use the bundled"),
    (["--dataset", "imdb"], "run without --dataset to use rt-polarity"),
    (["--budgets", "100000"], "more than the"),
    (["--budgets", "1"], "--budgets"),
])
def test_sentiment_bad_input_exits_2_with_one_line(tmp_path, args, fragment):
    result = run_script(SENTIMENT, "--quick", "--out", tmp_path, *args,
                        env_extra={"HTTPS_PROXY": "http://127.0.0.1:9", "HF_HUB_OFFLINE": "0"})
    assert_user_error(result, fragment)
    assert not any(tmp_path.rglob("*.json"))
