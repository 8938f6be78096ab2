"""Read images from files or from the single-file HDF5 variant of DanceReID.

A record's path is either a plain file path or "<file.h5>::<dataset path inside the file>"
(for example "DanceReID.h5::dataset/images/0001_000005.jpg"), the HDF5 entry holding the
encoded JPEG bytes.
"""
from __future__ import annotations

import io
import os
import threading

import numpy as np

from PIL import Image, UnidentifiedImageError

from ..errors import StreidError

H5_SEPARATOR = "::"

# One open handle per (process, file): h5py handles must not cross a fork into DataLoader workers.
_h5_handles: dict[tuple[int, str], object] = {}
_h5_lock = threading.Lock()


def h5_path(h5_file: str, key: str) -> str:
    return f"{h5_file}{H5_SEPARATOR}{key}"


def _h5_entry(path: str):
    import h5py  # imported lazily: only the HDF5 variant needs it

    file_name, key = path.split(H5_SEPARATOR, 1)
    with _h5_lock:
        cache_key = (os.getpid(), file_name)
        handle = _h5_handles.get(cache_key)
        if handle is None:
            try:
                handle = h5py.File(file_name, "r")
            except OSError as exc:
                raise StreidError(f"{file_name}: cannot open HDF5 file ({exc}); check the -h5 dataset file") from None
            _h5_handles[cache_key] = handle
        try:
            return handle[key][()]
        except KeyError:
            raise StreidError(f"{file_name}: no entry {key!r}; the HDF5 file and meta.json disagree") from None


def read_h5_array(path: str):
    """The array stored at "<file.h5>::<key>" (poses in the -h5 DanceReID variant)."""
    return _h5_entry(path)


def read_image_bytes(path: str) -> bytes:
    if H5_SEPARATOR in path:
        entry = np.asarray(_h5_entry(path))
        if entry.dtype == object:  # the release stores each JPEG as a 1-element vlen uint8 dataset
            entry = entry.reshape(-1)[0]
        return np.asarray(entry, dtype=np.uint8).tobytes()
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise StreidError(f"{path}: cannot read image ({exc.strerror}); check the dataset folder") from None


# what PIL raises for a file it cannot decode (a damaged header, a truncated body, a bomb)
DECODE_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError)


def image_size(path: str) -> tuple[int, int] | None:
    """(width, height) from the image's header, or None when it cannot be read (the image check
    names that problem)."""
    try:
        source = io.BytesIO(read_image_bytes(path)) if H5_SEPARATOR in path else path
        with Image.open(source) as image:
            return image.size
    except (StreidError, *DECODE_ERRORS):
        return None


def decode_error_text(exc: BaseException) -> str:
    """PIL's reason an image did not decode, without the in-memory buffer's repr that
    UnidentifiedImageError carries ("cannot identify image file <_io.BytesIO object at 0x...>")."""
    if isinstance(exc, UnidentifiedImageError):
        return "not an image format PIL can read"
    return str(exc)


def load_image(path: str) -> Image.Image:
    """Decode an image fully into RGB; a corrupt or truncated file is a StreidError naming it."""
    data = read_image_bytes(path)
    try:
        image = Image.open(io.BytesIO(data))
        image.load()  # forces a full decode so truncated files fail here, not later
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise StreidError(f"{path}: corrupt or truncated image ({decode_error_text(exc)}); replace or delete this "
                          "file") from None
    return image.convert("RGB")
