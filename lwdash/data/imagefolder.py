"""Evaluation sets uploaded as a zipped image folder: ``<class>/<image>.png|jpg``, one folder per class.

The archive is read in memory, member by member, after :func:`lwdash.data._zipsafe.vet_zip` has
checked its directory (path traversal, links, zip bombs); nothing is ever extracted to disk and
member names are used only as labels. Each image is decoded with Pillow (PNG or JPEG, checked by
content), converted to grayscale (1 channel) or RGB (3 channels), resized to the model's input
size and scaled to ``[0, 1]`` (pixel / 255), as float32 ``(N, C, H, W)``. Classes are the
folder names in sorted order (torchvision's ``ImageFolder`` convention): class id ``i`` is the
``i``-th folder name.
"""
from __future__ import annotations

import io
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import numpy as np

from lwdash.data._zipsafe import ZipLimits, read_member, vet_zip
from lwdash.data.arrays import dataset_from_arrays
from lwdash.data.base import DataError, Dataset

__all__ = [
    "IMAGE_SUFFIXES",
    "IMAGE_ZIP_LIMITS",
    "MAX_DECODED_BYTES",
    "MAX_IMAGE_PIXELS",
    "load_image_folder",
    "read_image_folder",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
#: Archive bounds: 100,000 members, 1 GiB uncompressed in all, no member expanding more than 200x.
IMAGE_ZIP_LIMITS = ZipLimits(max_members=100_000, max_total_bytes=1024**3, max_ratio=200.0)
#: Largest image accepted, in pixels (width x height), checked from the header before decoding.
MAX_IMAGE_PIXELS = 4096 * 4096
#: Largest decoded data set: N x C x H x W float32 bytes.
MAX_DECODED_BYTES = 2 * 1024**3
_GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L"})
_COLOUR_MODES = frozenset({"P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"})
_IGNORED_PARTS = ("__MACOSX",)
_IGNORED_FILES = (".DS_Store", "Thumbs.db", "desktop.ini")
ACCEPTED = (
    "accepted: a .zip of class folders, <class>/<image>.png or .jpg (grayscale or RGB), e.g. cat/001.png, "
    "dog/002.jpg, optionally inside one top-level folder; images are resized to the model's input size"
)


def _fmt(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(int(d)) for d in shape) + (",)" if len(shape) == 1 else ")")


def _target(input_shape: Sequence[int] | None, shown: str) -> tuple[int, int, int] | None:
    if input_shape is None:
        return None
    shape = tuple(int(d) for d in input_shape)
    if len(shape) != 3 or shape[0] not in (1, 3) or shape[1] < 1 or shape[2] < 1:
        raise DataError(
            f"{shown} is an image folder, which gives images of shape (1, H, W) (grayscale) or (3, H, W) (RGB), "
            f"but the model expects input {_fmt(shape)}; choose a model that takes images, or upload the data "
            "as an .npz with x already in the model's input shape"
        )
    return shape  # type: ignore[return-value]


def _image_members(infos: list[zipfile.ZipInfo], shown: str) -> list[tuple[str, zipfile.ZipInfo]]:
    """``(class name, member)`` for every image; refuses other files and wrong nesting."""
    files = []
    for info in infos:
        if info.is_dir():
            continue
        parts = PurePosixPath(info.filename).parts
        if any(p in _IGNORED_PARTS for p in parts) or parts[-1] in _IGNORED_FILES:
            continue
        files.append((parts, info))
    if not files:
        raise DataError(f"{shown} holds no files; {ACCEPTED}")
    # zipping a folder "data/" gives data/<class>/<image>: strip one shared top-level folder
    if all(len(parts) == 3 for parts, _ in files) and len({parts[0] for parts, _ in files}) == 1:
        files = [(parts[1:], info) for parts, info in files]
    out = []
    for parts, info in files:
        if len(parts) != 2:
            where = "at the top level" if len(parts) == 1 else f"{len(parts) - 1} folders deep"
            raise DataError(
                f"{shown}: {info.filename[:120]!r} is {where}; every image must sit in its class folder "
                f"(<class>/<image>); {ACCEPTED}"
            )
        if not parts[1].lower().endswith(IMAGE_SUFFIXES):
            raise DataError(
                f"{shown}: {info.filename[:120]!r} is not a .png or .jpg image; {ACCEPTED}"
            )
        out.append((parts[0], info))
    return out


def _decode(data: bytes, member: str, shown: str) -> tuple[np.ndarray, bool]:
    """One image as a ``(H, W)`` or ``(H, W, 3)`` uint8/float array, and whether it is grayscale."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img: Image.Image = Image.open(io.BytesIO(data))
            if img.format not in ("PNG", "JPEG"):
                raise DataError(
                    f"{shown}: {member[:120]!r} is a {img.format or 'unknown'} file, not a PNG or JPEG image; {ACCEPTED}"
                )
            w, h = img.size
            if w * h > MAX_IMAGE_PIXELS:
                raise DataError(
                    f"{shown}: {member[:120]!r} is {w}x{h} pixels; the limit is {MAX_IMAGE_PIXELS:,} pixels per "
                    f"image (decompression bomb guard); {ACCEPTED}"
                )
            mode = img.mode
            if mode in _GREY_MODES:
                if mode.startswith("I"):  # 16/32-bit grey: scale to 8 bits by the type's range
                    arr16 = np.asarray(img, dtype=np.float64)
                    top = 65535.0 if mode.startswith("I;16") or arr16.max(initial=0) <= 65535 else float(arr16.max())
                    img = Image.fromarray(np.clip(arr16 / top * 255.0, 0, 255).astype(np.uint8), mode="L")
                else:
                    img = img.convert("L")
                grey = True
            elif mode in _COLOUR_MODES:
                img = img.convert("RGB")
                grey = False
            else:
                raise DataError(
                    f"{shown}: {member[:120]!r} has pixel mode {mode}; accepted are 8-bit grayscale and RGB (with or "
                    f"without alpha, or palette) PNG/JPEG images; {ACCEPTED}"
                )
            img.load()
            return np.asarray(img), grey
    except DataError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DataError(
            f"{shown}: {member[:120]!r} declares more pixels than Pillow's decompression-bomb limit ({exc}); the "
            f"limit here is {MAX_IMAGE_PIXELS:,} pixels per image; {ACCEPTED}"
        ) from exc
    except Image.UnidentifiedImageError as exc:
        raise DataError(
            f"{shown}: {member[:120]!r} is not a PNG or JPEG image (its content is not a format Pillow knows); {ACCEPTED}"
        ) from exc
    except Exception as exc:  # truncated or corrupt image data, ...
        raise DataError(
            f"{shown}: {member[:120]!r} could not be read as an image ({type(exc).__name__}: {exc}); {ACCEPTED}"
        ) from exc


def _resize(arr: np.ndarray, grey: bool, target: tuple[int, int, int]) -> np.ndarray:
    """``(C, H, W)`` float32 in [0, 1] at the target size and channel count."""
    from PIL import Image

    c, h, w = target
    img = Image.fromarray(arr, mode="L" if grey else "RGB")
    if c == 1 and not grey:
        img = img.convert("L")
    elif c == 3 and grey:
        img = img.convert("RGB")
    if img.size != (w, h):
        img = img.resize((w, h), Image.Resampling.BILINEAR)
    out = np.asarray(img, dtype=np.float32) / 255.0
    return out[None] if c == 1 else np.ascontiguousarray(out.transpose(2, 0, 1))


def read_image_folder(
    source: bytes | Path, *, input_shape: Sequence[int] | None = None, display_name: str | None = None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Decode a zipped image folder into arrays, in memory, with every limit enforced.

    Args:
        source: the archive's bytes or path.
        input_shape: the model's per-sample input ``(C, H, W)`` with ``C`` 1 or 3: images are
            converted and resized to it. ``None``: every image must have the same size; the
            data is grayscale ``(1, H, W)`` if every image is grayscale, else RGB ``(3, H, W)``.
        display_name: the file name the user knows, for messages.

    Returns:
        ``x`` float32 ``(N, C, H, W)`` in ``[0, 1]``, ``y`` int64 ``(N,)``, and the class names
        (class id ``i`` is ``classes[i]``).

    Raises:
        DataError: not a zip, path traversal, links, zip bombs, files that are not PNG/JPEG
            images, wrong nesting, images too large, a model input that is not an image, or
            (without ``input_shape``) images of different sizes.
    """
    shown = display_name or (source.name if isinstance(source, Path) else "the archive")
    target = _target(input_shape, shown)
    try:
        zf = zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise DataError(f"{shown} is not a readable .zip archive ({exc}); {ACCEPTED}") from exc
    with zf:
        infos = vet_zip(zf, shown, IMAGE_ZIP_LIMITS, ACCEPTED)
        members = _image_members(infos, shown)
        classes = sorted({cls for cls, _ in members})
        class_id = {cls: i for i, cls in enumerate(classes)}
        images: list[np.ndarray] = []  # (C, H, W) float32 when the target is known, else native uint8
        greys: list[bool] = []
        labels: list[int] = []
        first: tuple[tuple[int, ...], str] | None = None  # native (H, W) of the first image and its member
        budget = 0
        for cls, info in sorted(members, key=lambda m: m[1].filename):
            arr, grey = _decode(read_member(zf, info, shown, ACCEPTED), info.filename, shown)
            if target is not None:
                arr = _resize(arr, grey, target)  # at once: native images can be far larger than the archive
            elif first is None:
                first = (arr.shape[:2], info.filename)
            elif arr.shape[:2] != first[0]:
                (h0, w0), m0 = first
                h1, w1 = arr.shape[:2]
                raise DataError(
                    f"{shown}: the images have different sizes ({w0}x{h0} in {m0[:60]!r}, {w1}x{h1} in "
                    f"{info.filename[:60]!r}); select a model first so that they are resized to its input shape; "
                    f"{ACCEPTED}"
                )
            budget += arr.size * 4  # float32 bytes this image will take in x
            if budget > MAX_DECODED_BYTES:
                raise DataError(
                    f"{shown}: the decoded images would take more than {MAX_DECODED_BYTES / 1024**3:.0f} GiB as "
                    f"float32 (after {len(images) + 1:,} of {len(members):,} images); upload fewer or smaller images"
                )
            images.append(arr)
            greys.append(grey)
            labels.append(class_id[cls])
    if target is None:
        h, w = images[0].shape[:2]
        target = (1 if all(greys) else 3, int(h), int(w))
        images = [_resize(arr, grey, target) for arr, grey in zip(images, greys, strict=True)]
    x = np.stack(images).astype(np.float32, copy=False)
    return x, np.asarray(labels, dtype=np.int64), classes


def load_image_folder(
    path: Path,
    *,
    input_shape: Sequence[int] | None = None,
    seed: int = 0,
    name: str | None = None,
    display_name: str | None = None,
) -> Dataset:
    """Load a zipped image folder as an evaluation set, split 60/20/20 train/calib/test.

    Args:
        path: the ``.zip`` file.
        input_shape: the model's per-sample input shape ``(C, H, W)``; see :func:`read_image_folder`.
        seed: seed of the split shuffle.
        name: data-set name; defaults to the file's stem.
        display_name: the file name the user knows, for messages.

    Raises:
        DataError: see :func:`read_image_folder`; also too few images for the splits.
    """
    path = Path(path)
    shown = display_name or path.name
    if not path.is_file():
        raise DataError(f"no data file at {path}")
    x, y, classes = read_image_folder(path, input_shape=input_shape, display_name=shown)
    return dataset_from_arrays(x, y, name=name or Path(shown).stem, shown=shown, seed=seed, num_classes=len(classes))
