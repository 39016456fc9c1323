"""Tests of common/task/data.py on tiny IDX files, a local HTTP server, and the real MNIST."""

from __future__ import annotations

import errno
import gzip
import hashlib
import http.server
import os
import socket
import tempfile
import threading
import time
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from common.task import data
from common.task.data import DATASETS, DataError, DatasetSpec, load_dataset, read_idx

STEMS = data.DATASETS["mnist"].files
REAL_MNIST = Path(
    os.environ.get("MNIST_DIR") or Path(__file__).resolve().parents[2] / "shared/datasets/mnist"
)


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def tiny_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "train-images-idx3-ubyte": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.array([5, 0, 4, 1, 9], np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": np.array([7, 2, 1], np.uint8),
    }


def write_files(directory: Path, arrays: dict[str, np.ndarray], gz: bool = True) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for stem, array in arrays.items():
        raw = idx_bytes(array)
        path = directory / (f"{stem}.gz" if gz else stem)
        path.write_bytes(gzip.compress(raw) if gz else raw)
    return directory


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    """Every test gets its own cache; the user's real one is never touched."""
    monkeypatch.setenv("MNIST_COMPARE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("TINY_DIR", raising=False)
    return tmp_path / "cache"


def register(monkeypatch, arrays: dict[str, np.ndarray]) -> DatasetSpec:
    """Add a dataset "tiny" (env var TINY_DIR) pinned to the content of ``arrays``."""
    pins = {s: hashlib.sha256(idx_bytes(a)).hexdigest() for s, a in arrays.items()}
    spec = DatasetSpec("tiny", pins, mirrors=(), pixel_mean=0.5, pixel_std=0.25)
    monkeypatch.setitem(data.DATASETS, "tiny", spec)
    return spec


@pytest.fixture
def tiny(monkeypatch) -> DatasetSpec:
    return register(monkeypatch, tiny_arrays())


@pytest.fixture
def server(tmp_path):
    """A local HTTP server on 127.0.0.1 serving tmp_path/"www"; yields (base URL, folder)."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=root))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", root
    httpd.shutdown()
    httpd.server_close()


def test_read_idx_raw_and_gzipped_detected_by_content(tmp_path):
    images = tiny_arrays()["train-images-idx3-ubyte"]
    (tmp_path / "raw.gz").write_bytes(idx_bytes(images))  # raw despite the name
    (tmp_path / "zipped").write_bytes(gzip.compress(idx_bytes(images)))  # gzipped without .gz
    for name in ("raw.gz", "zipped"):
        got = read_idx(tmp_path / name)
        assert got.dtype == np.uint8 and got.shape == (5, 28, 28)
        np.testing.assert_array_equal(got, images)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (idx_bytes(np.zeros((5, 28, 28)))[:116], "truncated: header says 5x28x28 = 3920 bytes"),
        (idx_bytes(np.zeros((5, 28, 28))) + b"x", "trailing bytes"),
        (b"\0\0\x08", "bad magic"),
        (b"\0\0\x09\x01" + idx_bytes(np.zeros(3))[4:], "bad magic 00000901"),
        (b"\0\0\x08\x02" + idx_bytes(np.zeros((2, 2)))[4:], "bad magic 00000802"),
        (idx_bytes(np.array([1, 10, 2])), "label 10 out of range 0-9"),
        (b"\x1f\x8b\x08\x00garbage", "bad gzip stream"),
    ],
)
def test_read_idx_rejects_bad_files(tmp_path, content, expected):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(content)
    with pytest.raises(DataError, match=expected) as err:
        read_idx(path)
    assert "train-images-idx3-ubyte.gz" in str(err.value) and "\n" not in str(err.value)


def test_truncated_message_names_sizes(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((5, 28, 28)))[:116]))
    with pytest.raises(DataError) as err:
        read_idx(path)
    expected = (
        "train-images-idx3-ubyte.gz: truncated: header says 5x28x28 = 3920 bytes, file has 100"
    )
    assert str(err.value) == expected


def test_unknown_name_lists_known():
    with pytest.raises(DataError, match="known: fashion-mnist, mnist"):
        load_dataset("kmnist")


def test_env_var_directory_mixed_raw_and_gz(tiny, tmp_path, monkeypatch):
    arrays = tiny_arrays()
    src = write_files(tmp_path / "src", dict(list(arrays.items())[:2]), gz=True)
    write_files(src, dict(list(arrays.items())[2:]), gz=False)
    monkeypatch.setenv("TINY_DIR", str(src))
    ds = load_dataset("tiny", progress=False)
    assert ds.source == str(src) and ds.name == "tiny" and ds.checksums == tiny.sha256
    np.testing.assert_array_equal(ds.train_images, arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(ds.test_labels, [7, 2, 1])
    assert ds.train_labels.dtype == np.int64 and ds.train_images.dtype == np.uint8


def test_wrong_checksum(tiny, tmp_path):
    arrays = tiny_arrays()
    arrays["t10k-labels-idx1-ubyte"] = np.array([7, 2, 2], np.uint8)  # valid IDX, other content
    src = write_files(tmp_path / "src", arrays)
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz: sha256") as err:
        load_dataset("tiny", data_dir=src)
    assert tiny.sha256["t10k-labels-idx1-ubyte"] in str(err.value)


def test_missing_or_incomplete_env_dir_is_an_error(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("TINY_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match=r"TINY_DIR=.*nowhere is not a directory") as err:
        load_dataset("tiny")
    assert "\n" not in str(err.value)
    src = write_files(tmp_path / "src", dict(list(tiny_arrays().items())[:3]))
    monkeypatch.setenv("TINY_DIR", str(src))
    with pytest.raises(DataError, match="lacks some of .*t10k-labels-idx1-ubyte"):
        load_dataset("tiny")


def test_image_and_label_counts_must_match(tmp_path, monkeypatch):
    arrays = tiny_arrays()
    arrays["train-labels-idx1-ubyte"] = arrays["train-labels-idx1-ubyte"][:4]
    register(monkeypatch, arrays)
    src = write_files(tmp_path / "src", arrays)
    with pytest.raises(DataError, match=r"train images uint8\[5, 28, 28\] do not match labels"):
        load_dataset("tiny", data_dir=src)


def test_no_data_and_no_download(tiny):
    with pytest.raises(DataError, match="download=False; set TINY_DIR="):
        load_dataset("tiny", download=False)


def test_parsed_cache_written_and_reused(tiny, tmp_path, cache):
    src = write_files(tmp_path / "src", tiny_arrays())
    first = load_dataset("tiny", data_dir=src)
    npz = list(cache.glob("tiny-*.npz"))
    assert len(npz) == 1 and len(npz[0].stem) == len("tiny-") + 12
    assert [p.name for p in cache.iterdir()] == [npz[0].name]  # no temporary file left over
    for path in src.iterdir():  # the cache must be read instead of the sources
        path.write_bytes(b"garbage")
    start = time.perf_counter()
    again = load_dataset("tiny", data_dir=src)
    assert time.perf_counter() - start <= 0.3
    assert again.source == "cache"
    for field in ("train_images", "train_labels", "test_images", "test_labels"):
        a, b = getattr(first, field), getattr(again, field)
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def test_corrupt_cache_is_rebuilt(tiny, tmp_path, cache):
    src = write_files(tmp_path / "src", tiny_arrays())
    load_dataset("tiny", data_dir=src)
    (npz,) = cache.glob("tiny-*.npz")
    npz.write_bytes(npz.read_bytes()[:100])
    ds = load_dataset("tiny", data_dir=src)
    assert ds.source == str(src)
    assert load_dataset("tiny", data_dir=src).source == "cache"


def test_interrupted_cache_write_leaves_nothing(tiny, tmp_path, cache, monkeypatch):
    def broken_savez(f, **arrays):
        f.write(b"PK partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", broken_savez)
    src = write_files(tmp_path / "src", tiny_arrays())
    with pytest.warns(UserWarning, match="could not write the parsed cache"):
        assert load_dataset("tiny", data_dir=src).source == str(src)
    assert list(cache.iterdir()) == []


def test_download_tries_mirrors_in_order(tiny, server, cache):
    base, root = server
    write_files(root / "good", tiny_arrays())
    mirrors = [base + "missing/", base + "good/"]
    ds = load_dataset("tiny", mirrors=mirrors, progress=False)
    assert ds.source == base + "good/"
    assert sorted(p.name for p in (cache / "tiny").iterdir()) == sorted(f"{s}.gz" for s in STEMS)
    np.testing.assert_array_equal(ds.train_labels, [5, 0, 4, 1, 9])
    assert load_dataset("tiny", mirrors=[], progress=False).source == "cache"


def test_download_checksum_mismatch_leaves_no_file(tiny, server, cache):
    base, root = server
    write_files(root, tiny_arrays(seed=1))  # same shapes, other pixels: images fail their pins
    with pytest.raises(DataError) as err:
        load_dataset("tiny", mirrors=[base], progress=False)
    message = str(err.value)
    assert message.startswith("train-images-idx3-ubyte.gz: download failed (" + base)
    assert "sha256" in message and "set TINY_DIR=" in message and "\n" not in message
    assert not (cache / "tiny" / "train-images-idx3-ubyte.gz").exists()
    assert list((cache / "tiny").iterdir()) == []


def test_download_failure_names_every_mirror_and_its_error(tiny, server, cache):
    base, _ = server
    with pytest.raises(DataError) as err:
        load_dataset("tiny", mirrors=[base + "one/", base + "two/"], progress=False)
    message = str(err.value)
    for mirror in ("one", "two"):
        assert f"{base}{mirror}/train-images-idx3-ubyte.gz: HTTPError: 404" in message
    assert "\n" not in message


def test_unwritable_cache_is_named_before_any_download(tiny, cache, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    with pytest.raises(DataError) as err:
        load_dataset("tiny", mirrors=["http://127.0.0.1:9/"], progress=False)
    message = str(err.value)
    assert f"the cache folder {cache / 'tiny'} is not writable" in message
    assert "Read-only file system" in message and "set MNIST_COMPARE_CACHE" in message
    assert "download failed" not in message and "\n" not in message


def test_dropped_corrupt_cache_is_mentioned_when_the_fallback_fails(tiny, tmp_path, cache):
    load_dataset("tiny", data_dir=write_files(tmp_path / "src", tiny_arrays()))
    (npz,) = cache.glob("tiny-*.npz")
    npz.write_bytes(b"not a zip")
    with pytest.raises(DataError) as err:
        load_dataset("tiny", download=False)
    message = str(err.value)
    assert "download=False" in message
    assert f"note: the parsed cache {npz} was unreadable (" in message
    assert message.endswith("and was ignored)")
    assert "\n" not in message


def test_download_server_down(tiny, cache):
    with socket.socket() as s:  # a port that nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DataError) as err:
        load_dataset("tiny", mirrors=[f"http://127.0.0.1:{port}/"], progress=False)
    message = str(err.value)
    assert "\n" not in message and f"127.0.0.1:{port}" in message and "ConnectionError" in message
    assert "set TINY_DIR=" in message
    assert not list((cache / "tiny").glob("*"))


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_pinned_pixel_statistics_are_the_training_sets_own(name, cache):
    spec = DATASETS[name]
    where = {"mnist": REAL_MNIST if REAL_MNIST.is_dir() else None}.get(name)
    try:
        dataset = load_dataset(name, data_dir=where, download=False, progress=False)
    except DataError as error:
        pytest.skip(f"{name} is not on this machine: {error}")
    pixels = dataset.train_images / np.float64(255)
    assert (spec.pixel_mean, spec.pixel_std) == (
        round(float(pixels.mean()), 4),
        round(float(pixels.std()), 4),
    )


@pytest.mark.skipif(not REAL_MNIST.is_dir(), reason=f"no MNIST at {REAL_MNIST}")
def test_real_mnist(cache):
    ds = load_dataset("mnist", data_dir=REAL_MNIST, progress=False)
    assert ds.source == str(REAL_MNIST)
    assert ds.train_images.shape == (60000, 28, 28) and ds.test_images.shape == (10000, 28, 28)
    assert ds.train_images.dtype == np.uint8 and ds.train_labels.dtype == np.int64
    train_counts = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(ds.train_labels).tolist() == train_counts
    test_counts = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert np.bincount(ds.test_labels).tolist() == test_counts
    assert ds.train_labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert abs(ds.train_images.mean() / 255 - 0.1307) < 1e-4
    # The speed of this repeat load is a benchmark (benchmarks/test_data_loading.py), not a test.
    again = load_dataset("mnist", data_dir=REAL_MNIST, progress=False)
    assert again.source == "cache"
    np.testing.assert_array_equal(again.train_images, ds.train_images)


FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not FASHION.is_dir(), reason="Debian package dataset-fashion-mnist absent")
def test_fashion_mnist_from_system_dir(monkeypatch):
    monkeypatch.delenv("FASHION_MNIST_DIR", raising=False)
    ds = load_dataset("fashion-mnist", download=False, progress=False)
    assert ds.source == str(FASHION)
    assert np.bincount(ds.train_labels).tolist() == [6000] * 10
    assert np.bincount(ds.test_labels).tolist() == [1000] * 10
    assert ds.train_labels[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
