"""The sentence polarity data set v1.0 (Pang & Lee 2005, "MR"): 5,331 positive and 5,331 negative movie-review
snippets, one lower-cased, tokenised sentence a line, in ``<data dir>/rt-polaritydata/rt-polarity.{pos,neg}``.

    texts, labels = load_sentences(data_dir)       # list of str, int64 (10,662,) with 1 = positive

Missing files come from the official archive (sha256-checked, only the two text files extracted). The
original files are Latin-1; a UTF-8 copy (as in ../shared/data) reads the same. A file that is empty,
binary or not text stops with one line saying what to do.
"""
from __future__ import annotations

import os
import tarfile
from pathlib import Path

import numpy as np

from shared_utils.atomic import atomic_write_bytes
from shared_utils.data.fetch import _offline_error, download, file_digest
from shared_utils.errors import UserError

POLARITY_URLS = ("https://www.cs.cornell.edu/people/pabo/movie-review-data/rt-polaritydata.tar.gz",
                 "https://storage.googleapis.com/seldon-datasets/sentence_polarity_v1/rt-polaritydata.tar.gz")
POLARITY_SHA256 = "a05befe52aafda71d458d188a1c54506a998b1308613ba76bbda2e5029409ce9"
POLARITY_FOLDER = "rt-polaritydata"
POLARITY_FILES = ("rt-polarity.pos", "rt-polarity.neg")


def read_lines(path: Path) -> list[str]:
    """The non-empty lines of a text file, UTF-8 or (as the original) Latin-1, whitespace trimmed."""
    raw = path.read_bytes()
    if b"\x00" in raw:
        raise UserError(f"{path} is binary, not one sentence a line; delete it and download the data again")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise UserError(f"{path} holds no sentences; delete it and download the data again")
    return lines


def _fetch(data_dir: Path, quiet: bool) -> None:
    archive = data_dir / "rt-polaritydata.tar.gz"
    if not archive.exists():
        download(POLARITY_URLS, archive, sha256=POLARITY_SHA256, quiet=quiet)
    if file_digest(archive) != POLARITY_SHA256:
        raise UserError(f"{archive} fails its sha256 check; delete it and run again")
    with tarfile.open(archive, "r:gz") as tar:
        for name in POLARITY_FILES:           # only the two text files, never a path the archive chooses
            member = tar.getmember(f"{POLARITY_FOLDER}/{name}")
            atomic_write_bytes(data_dir / POLARITY_FOLDER / name, tar.extractfile(member).read())


def load_sentences(data_dir: str | os.PathLike, *, download_ok: bool = True, quiet: bool = False
                   ) -> tuple[list[str], np.ndarray]:
    """Every sentence (positives first) and its label (1 positive, 0 negative)."""
    data_dir = Path(data_dir)
    folder = data_dir / POLARITY_FOLDER
    if not all((folder / f).is_file() for f in POLARITY_FILES):
        if not download_ok:
            raise UserError(f"{', '.join(POLARITY_FILES)} not found in {folder}; download "
                            f"{POLARITY_URLS[0]} and unpack it in {data_dir}")
        try:
            _fetch(data_dir, quiet)
        except OSError as exc:
            raise _offline_error("the sentence polarity data", folder, POLARITY_FILES, str(exc)) from None
        except (tarfile.TarError, KeyError) as exc:
            raise UserError(f"{data_dir / 'rt-polaritydata.tar.gz'} is not the polarity archive ({exc}); "
                            "delete it and run again") from None
    pos, neg = (read_lines(folder / f) for f in POLARITY_FILES)
    labels = np.concatenate([np.ones(len(pos), np.int64), np.zeros(len(neg), np.int64)])
    return pos + neg, labels
