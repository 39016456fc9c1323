"""MNIST and Fashion-MNIST as numpy arrays, verified, with no deep-learning framework involved.

``load_dataset(name)`` looks for the four IDX files (``train-images-idx3-ubyte``,
``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each either
gzipped as ``X.gz`` or raw as ``X``) in this order:

1. the ``data_dir`` argument;
2. the directory in the dataset's environment variable (``MNIST_DIR``, ``FASHION_MNIST_DIR``);
   a directory named by 1 or 2 that is missing or incomplete is an error, never a fall-through;
3. the dataset's documented system directories (Debian's ``/usr/share/datasets/fashion-mnist``);
4. ``<cache>/<name>/`` in the per-user cache (``default_cache_dir()``);
5. a download from the dataset's mirrors, in order, into ``<cache>/<name>/``.

Every file is checked against the pinned SHA-256 of its decompressed bytes, so gzipped and raw
copies both pass. The parsed arrays are then kept in ``<cache>/<name>-<key>.npz``; while that
file exists a load reads only it and skips reading and hashing the IDX files.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import warnings
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pooch

from common.task.files import atomic_write

CACHE_ENV = "MNIST_COMPARE_CACHE"
_HINT = "set {}=/path/to/folder holding the four IDX files"
_ARRAYS = ("train_images", "train_labels", "test_images", "test_labels")


class DataError(Exception):
    """A dataset that cannot be found, fetched, verified or parsed; the message is one line."""


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset lives and what its four IDX files must hash to once decompressed."""

    name: str
    sha256: dict[str, str]  # file stem -> sha256 of the decompressed IDX bytes
    mirrors: tuple[str, ...]  # base URLs, tried in order; a file's URL is base + stem + ".gz"
    system_dirs: tuple[str, ...] = ()
    # Mean and standard deviation of the training pixels on the [0, 1] scale, to 4 decimals:
    # what a model's inputs are standardized with (tests/test_data.py recomputes them).
    pixel_mean: float = field(kw_only=True)
    pixel_std: float = field(kw_only=True)

    @property
    def files(self) -> tuple[str, ...]:
        """The four file stems, in the order train images, train labels, test images, labels."""
        return tuple(self.sha256)

    @property
    def env_var(self) -> str:
        """``MNIST_DIR`` for "mnist", ``FASHION_MNIST_DIR`` for "fashion-mnist"."""
        return self.name.upper().replace("-", "_") + "_DIR"


@dataclass(frozen=True)
class ImageDataset:
    """The four arrays of a dataset, with the pins they were verified against."""

    name: str
    train_images: np.ndarray  # uint8 (N, 28, 28)
    train_labels: np.ndarray  # int64 (N,)
    test_images: np.ndarray
    test_labels: np.ndarray
    checksums: dict[str, str]
    source: str  # the directory read, "cache" (the parsed .npz), or the URL downloaded
    cache_error: str | None = None  # why the parsed cache could not be written, if it couldn't


def _pins(sha256sum_output: str) -> dict[str, str]:
    """Lines of ``sha256sum`` output -> {file stem: sha256}."""
    return {stem: digest for digest, stem in map(str.split, sha256sum_output.strip().splitlines())}


DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        "mnist",
        _pins("""
        ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db  train-images-idx3-ubyte
        65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5  train-labels-idx1-ubyte
        0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7  t10k-images-idx3-ubyte
        ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2  t10k-labels-idx1-ubyte
        """),
        ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
        pixel_mean=0.1307,
        pixel_std=0.3081,
    ),
    "fashion-mnist": DatasetSpec(
        "fashion-mnist",
        _pins("""
        c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888  train-images-idx3-ubyte
        bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9  train-labels-idx1-ubyte
        5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b  t10k-images-idx3-ubyte
        0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34  t10k-labels-idx1-ubyte
        """),
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        system_dirs=("/usr/share/datasets/fashion-mnist",),  # Debian package dataset-fashion-mnist
        pixel_mean=0.2860,
        pixel_std=0.3530,
    ),
}


def default_cache_dir() -> Path:
    """The per-user cache: ``$MNIST_COMPARE_CACHE`` if set, else pooch's OS cache folder."""
    return Path(os.environ.get(CACHE_ENV) or pooch.os_cache("mnist-compare"))


def _one_line(error: BaseException) -> str:
    return " ".join(f"{type(error).__name__}: {error}".split())


def _gunzip(data: bytes, label: object) -> bytes:
    """``data`` gunzipped when it starts with the gzip magic bytes, else as it is."""
    try:
        return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{label}: bad gzip stream ({_one_line(e)}); replace the file") from e


def _read(path: Path, label: object) -> bytes:
    try:
        return _gunzip(path.read_bytes(), label)
    except OSError as e:
        raise DataError(f"{label}: unreadable ({_one_line(e)})") from e


def _verified(data: bytes, sha256: str, label: object) -> bytes:
    if (digest := hashlib.sha256(data).hexdigest()) != sha256:
        raise DataError(
            f"{label}: sha256 of the decompressed content is {digest}, pinned {sha256}; "
            "the file is corrupt or from another dataset: replace or delete it"
        )
    return data


def _parse_idx(data: bytes, label: object) -> np.ndarray:
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != 0x08 or data[3] not in (1, 3):
        raise DataError(
            f"{label}: bad magic {data[:4].hex() or '(empty)'}, expected 00000801 (labels) or "
            "00000803 (images) of unsigned bytes; not an MNIST-style IDX file"
        )
    ndim = data[3]
    if len(data) < 4 + 4 * ndim:
        raise DataError(f"{label}: truncated: {len(data)} bytes, shorter than its header")
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", ndim, 4))
    want, have = int(np.prod(dims)), len(data) - 4 - 4 * ndim
    if want != have:
        what, shape = "truncated" if have < want else "trailing bytes", "x".join(map(str, dims))
        raise DataError(f"{label}: {what}: header says {shape} = {want} bytes, file has {have}")
    array = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims).copy()
    if ndim == 1 and array.size and array.max() > 9:
        raise DataError(f"{label}: label {array.max()} out of range 0-9; the file is corrupt")
    return array


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Parse one IDX file, gzipped or raw, into a uint8 array shaped as its header says."""
    return _parse_idx(_read(Path(path), Path(path).name), Path(path).name)


def _find_files(directory: Path, stems: Sequence[str]) -> dict[str, Path] | None:
    """{stem: path} with ``stem`` or ``stem.gz`` found in ``directory`` for each, else None."""
    found = {s: p for s in stems for p in (directory / f"{s}.gz", directory / s) if p.is_file()}
    return found if len(found) == len(stems) else None


def _fetch(url: str, sha256: str, progress: bool, f) -> None:
    """Download ``url`` into the open file ``f``; raise unless its decompressed sha256 matches."""
    pooch.HTTPDownloader(progressbar=progress, timeout=60)(url, f, None)
    f.seek(0)
    _verified(_gunzip(f.read(), url), sha256, url)


def _download(spec: DatasetSpec, directory: Path, mirrors: Sequence[str], progress: bool) -> str:
    """Fetch the files missing from ``directory``, each from the first mirror that serves it
    with the pinned content; return the (last) mirror used."""
    used = "cache"
    for stem in spec.files:
        if _find_files(directory, [stem]):
            continue
        errors = {}
        for base in mirrors:
            url = f"{base.rstrip('/')}/{stem}.gz"
            try:
                atomic_write(
                    directory / f"{stem}.gz", partial(_fetch, url, spec.sha256[stem], progress)
                )
                used = base
                break
            except Exception as e:  # refused, HTTP error, timeout, wrong content: next mirror
                errors[url] = e
        else:
            tried = "; ".join(f"{url}: {_one_line(e)}" for url, e in errors.items())
            raise DataError(
                f"{stem}.gz: download failed ({tried or 'no mirror given'}); to work offline "
                + _HINT.format(spec.env_var)
            ) from next(reversed(errors.values()), None)
    return used


def _writable(directory: Path, spec: DatasetSpec) -> Path:
    """``directory``, created if need be; a DataError before any download when it can't be."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as e:
        raise DataError(
            f"{spec.name}: not found locally, and the cache folder {directory} is not writable "
            f"({_one_line(e)}); set MNIST_COMPARE_CACHE to a writable folder, or "
            + _HINT.format(spec.env_var)
        ) from e
    return directory


def _checked(arrays: dict[str, np.ndarray], label: object) -> dict[str, np.ndarray]:
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        got = (images.dtype, images.ndim, labels.dtype, labels.shape)
        if got != (np.uint8, 3, np.int64, images.shape[:1]):
            raise DataError(
                f"{label}: {split} images {images.dtype}{list(images.shape)} do not match "
                f"labels {labels.dtype}{list(labels.shape)}; the files are from different sets"
            )
    return arrays


def _load_npz(path: Path) -> tuple[dict[str, np.ndarray] | None, str]:
    """The parsed arrays cached at ``path`` (None when missing or unreadable), and why not."""
    if not path.exists():
        return None, ""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return _checked({k: npz[k] for k in _ARRAYS}, path), ""
    except Exception as e:  # truncated, not a zip, missing key, wrong shapes: rebuild it
        return None, f"the parsed cache {path} was unreadable ({_one_line(e)}) and was ignored"


def load_dataset(
    name: str = "mnist",
    data_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    mirrors: Sequence[str] | None = None,
    download: bool = True,
    progress: bool = True,
) -> ImageDataset:
    """Load a dataset, verified against its pinned checksums; see the module docstring."""
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}")
    spec = DATASETS[name]
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    explicit = data_dir if data_dir is not None else os.environ.get(spec.env_var) or None
    files = source = None
    if explicit is not None:
        how = f"{'data_dir' if data_dir is not None else spec.env_var}={explicit}"
        if not Path(explicit).is_dir():
            raise DataError(f"{how} is not a directory; point it at the IDX files' folder")
        if (files := _find_files(Path(explicit), spec.files)) is None:
            raise DataError(
                f"{how} lacks some of {', '.join(spec.files)} (.gz or raw); put all four there"
            )
        source = str(explicit)

    key = hashlib.sha256("".join(spec.sha256.values()).encode()).hexdigest()[:12]
    npz_path = cache / f"{name}-{key}.npz"
    arrays, dropped = _load_npz(npz_path)
    if arrays is not None:
        return ImageDataset(name, **arrays, checksums=dict(spec.sha256), source="cache")
    try:
        return _load_files(spec, files, source, cache, npz_path, mirrors, download, progress)
    except DataError as e:
        if dropped:  # say so: the fallback ran because of it
            raise DataError(f"{e} (note: {dropped})") from e
        raise


def _load_files(spec, files, source, cache, npz_path, mirrors, download, progress):
    """load_dataset's path without a valid parsed cache: find or fetch the IDX files, parse and
    check them, and cache the arrays at ``npz_path``."""
    name = spec.name
    for directory in [*map(Path, spec.system_dirs), cache / name] if files is None else []:
        if (files := _find_files(directory, spec.files)) is not None:
            source = "cache" if directory == cache / name else str(directory)
            break
    if files is None:
        if not download:
            raise DataError(
                f"{name}: not in {cache / name}, download=False; {_HINT.format(spec.env_var)}"
            )
        mirrors = spec.mirrors if mirrors is None else mirrors
        source = _download(spec, _writable(cache / name, spec), mirrors, progress)
        files = _find_files(cache / name, spec.files)

    parsed = []
    for stem, path in files.items():
        parsed.append(_parse_idx(_verified(_read(path, path), spec.sha256[stem], path), path))
    out = dict(zip(_ARRAYS, parsed, strict=True))
    out["train_labels"] = out["train_labels"].astype(np.int64)
    out["test_labels"] = out["test_labels"].astype(np.int64)
    _checked(out, source)
    cache_error = None
    try:
        atomic_write(npz_path, lambda f: np.savez(f, **out))
    except OSError as e:  # an optimisation lost, nothing more: the arrays are loaded
        cache_error = f"could not write the parsed cache {npz_path}: {_one_line(e)}"
        warnings.warn(cache_error, stacklevel=2)
    checksums = dict(spec.sha256)
    return ImageDataset(name, **out, checksums=checksums, source=source, cache_error=cache_error)
