"""Fetching the official files: mirrors in order, md5-checked, atomic; offline, one line naming the files."""
from __future__ import annotations

import hashlib
import os
import urllib.request
from pathlib import Path
from typing import Sequence

from shared_utils.data.core import ENV_VAR
from shared_utils.errors import UserError


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download(urls: Sequence[str], dest: Path, *, md5: str | None = None, sha256: str | None = None,
             quiet: bool = False) -> None:
    """Fetch the first mirror that answers into ``dest``, verifying its md5 or sha256 (whichever the source
    publishes); atomic.

    Raises ``OSError`` (network) or ``UserError`` (checksum) when nothing usable arrived.
    """
    from tqdm.auto import tqdm

    if not (md5 or sha256):
        raise ValueError("download() needs the file's md5 or sha256")

    created = [d for d in [dest.parent, *dest.parent.parents] if not d.exists()]   # deepest first
    dest.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for url in urls:
        tmp = dest.with_name(dest.name + ".part")
        try:
            with urllib.request.urlopen(url, timeout=30) as response, open(tmp, "wb") as out:
                total = int(response.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name,
                          disable=quiet, leave=False) as bar:
                    for chunk in iter(lambda: response.read(1 << 16), b""):
                        out.write(chunk)
                        bar.update(len(chunk))
            algorithm, want = ("md5", md5) if md5 else ("sha256", sha256)
            got = file_digest(tmp, algorithm)
            if got != want:
                raise UserError(f"{url} arrived with {algorithm} {got}, expected {want}; try again later")
            os.replace(tmp, dest)
            return
        except (OSError, UserError) as exc:
            errors.append(f"{url}: {exc}")
        finally:
            if tmp.exists():
                tmp.unlink()
    for folder in created:   # nothing arrived: leave no empty MNIST/raw tree in a mistyped --data-dir
        try:
            folder.rmdir()
        except OSError:
            break
    raise OSError("; ".join(errors))


def _offline_error(name: str, folder: Path, files: Sequence[str], reason: str) -> UserError:
    return UserError(
        f"{name} not found in {folder} and the download failed ({reason.splitlines()[0][:120]}); "
        f"put {', '.join(files)} there, or point --data-dir / ${ENV_VAR} at a folder that has them")


