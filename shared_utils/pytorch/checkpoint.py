"""PyTorch checkpoints: saved atomically, loaded with ``weights_only=True`` (tensors and plain containers,
never code); a missing, truncated or foreign file is a one-line UserError."""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch

from shared_utils.atomic import atomic_write_bytes
from shared_utils.errors import UserError


def save_torch(path: str | os.PathLike, obj: Any) -> Path:
    """``torch.save`` into a buffer, then an atomic write."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def load_torch(path: str | os.PathLike, map_location: Any = "cpu") -> Any:
    """``torch.load(..., weights_only=True)``: tensors and plain containers only."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for foreign or truncated files
        first = _first_words(str(exc)) or type(exc).__name__
        raise UserError(f"checkpoint {path} is corrupt or holds more than weights ({first})") from None


def _first_words(text: str, limit: int = 120) -> str:
    """The first line of an error, cut at a word boundary (torch's messages run to many lines)."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    if len(line) <= limit:
        return line
    return line[:limit].rsplit(" ", 1)[0].rstrip(",;:") + " ..."
