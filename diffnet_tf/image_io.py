"""Reading and writing the images users restore: PNG (8 and 16 bits), JPEG, TIFF (8 and 16
bits, float) and .npy.

Images come back as float32 (H, W, C), C in {1, 3}: PNG/JPEG divided by the full scale of
the file's bit depth, alpha dropped, EXIF orientation applied (phone photographs come out
upright). Pillow reads and writes 8-bit PNG and JPEG; it truncates 16-bit colour PNGs to
8 bits, so every 16-bit PNG goes through the small NumPy + zlib codec in `png16`. TIFF
goes through `tiff` (tifffile, the optional extra `tiff`); float TIFF values are kept, as
.npy values are.
Writes are atomic (`files.replace_atomically`: a failed one raises `files.WriteFailed`).
No TensorFlow.
"""

import dataclasses
import io
import os
import pathlib

import numpy as np
import PIL.Image

from diffnet_tf import png16, tiff
from diffnet_tf.files import make_folder, replace_atomically

FORMATS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".npy")
BIT_DEPTHS = (8, 16, tiff.FLOAT_DEPTH)  # 32: float32 samples (TIFF only)
_JPEG = (".jpg", ".jpeg")
_TIFF = (".tif", ".tiff")
# the bit depths each format writes (.npy: float32 values, no depth)
_FORMAT_DEPTHS = {".png": (8, 16), ".jpg": (8,), ".jpeg": (8,), ".tif": BIT_DEPTHS,
                  ".tiff": BIT_DEPTHS}
_ORIENTATION_TAG = 0x0112
# EXIF orientation -> (transpose, flip rows, flip columns), the same as
# PIL.ImageOps.exif_transpose; 1 (and anything unknown) leaves the image as it is.
_ORIENTATIONS = {
    2: (False, False, True), 3: (False, True, True), 4: (False, True, False),
    5: (True, False, False), 6: (True, False, True), 7: (True, True, True),
    8: (True, True, False),
}


@dataclasses.dataclass(frozen=True)
class ImageFormat:
    """What `read_image` found in a file.

    Attributes:
        extension: the path's extension in lower case (".jpeg" stays ".jpeg").
        bit_depth: 8 or 16 for PNG/JPEG/TIFF (1, 2 and 4-bit PNGs read as 8), 32 for a
            floating-point TIFF, None for .npy.
        channels: 1 or 3, after dropping alpha.
        had_alpha: an alpha channel (or a PNG transparency chunk) was dropped.
    """

    extension: str
    bit_depth: int | None
    channels: int
    had_alpha: bool


def _check_extension(path):
    extension = os.path.splitext(path)[1].lower()
    if extension not in FORMATS:
        raise ValueError(
            f"Expected an image file ending in one of {', '.join(FORMATS)}. "
            f"Received {os.fspath(path)!r}."
        )
    return extension


def _check_image(image, channels, where):
    """Raises unless `image` is a non-empty finite (H, W) or (H, W, C), C in `channels`.

    Args:
        where: where the image is, for the message: "in 'a.npy'", "to write to 'b.png'".
    """
    if not (image.ndim == 2 or image.ndim == 3 and image.shape[-1] in channels):
        shapes = ", ".join(["(H, W)"] + [f"(H, W, {c})" for c in channels])
        raise ValueError(
            f"Expected an image of shape {shapes} {where}. Received shape {image.shape}."
        )
    if image.size == 0:
        raise ValueError(
            f"Expected a non-empty image (no zero dimension) {where}. "
            f"Received shape {image.shape}."
        )
    bad = image.size - np.count_nonzero(np.isfinite(image))
    if bad:
        raise ValueError(f"Expected finite values {where}. Received {bad} NaN or inf values.")


def _orient(image, orientation):
    """Applies an EXIF orientation (1 to 8) to an (H, W, C) array."""
    transpose, flip_rows, flip_columns = _ORIENTATIONS.get(orientation, (False, False, False))
    if transpose:
        image = image.swapaxes(0, 1)
    return image[:: -1 if flip_rows else 1, :: -1 if flip_columns else 1]


def _read_pillow(data):
    """8-bit (or less) PNG and JPEG bytes -> (uint8 (H, W, C), orientation, had_alpha)."""
    try:
        image = PIL.Image.open(io.BytesIO(data), formats=["PNG", "JPEG"])
    except PIL.UnidentifiedImageError:
        raise ValueError("not a PNG or JPEG file") from None
    with image:
        image.load()
        had_alpha = "A" in image.getbands() or "transparency" in image.info
        grey = image.mode in ("1", "L", "LA")  # palette images become RGB
        pixels = np.asarray(image.convert("L" if grey else "RGB"))
        orientation = image.getexif().get(_ORIENTATION_TAG, 1)
    return np.atleast_3d(pixels), orientation, had_alpha


def _read_png16(data):
    """16-bit PNG bytes -> (uint16 (H, W, C), orientation, had_alpha)."""
    samples, chunks = png16.decode(data)
    channels = 1 if samples.shape[-1] <= 2 else 3
    had_alpha = samples.shape[-1] != channels or b"tRNS" in chunks
    exif = PIL.Image.Exif()
    if b"eXIf" in chunks:
        exif.load(bytes(chunks[b"eXIf"][0]))
    return samples[..., :channels], exif.get(_ORIENTATION_TAG, 1), had_alpha


def _npy_image(array, where):
    """A loaded .npy array -> (float32 (H, W, C), C in {1, 3}, ImageFormat), checked."""
    if array.dtype.kind not in "iuf":
        raise ValueError(
            f"Expected a real numeric array (integers or floats) {where}. "
            f"Received dtype {array.dtype}."
        )
    with np.errstate(over="ignore"):  # values beyond float32 become inf: reported next
        image = array.astype(np.float32)
    _check_image(image, (1, 3, 4), where)
    image = np.atleast_3d(image)
    had_alpha = image.shape[-1] == 4
    image = image[..., :3]
    return image, ImageFormat(".npy", None, image.shape[-1], had_alpha)


def read_image(path):
    """Reads a PNG, JPEG or .npy image.

    Args:
        path: a file ending in one of `FORMATS` (PNG/JPEG are recognised by their content).

    Returns:
        (image, image_format): image is float32 (H, W, C), C in {1, 3}. PNG/JPEG values are
        divided by the full scale of the file's bit depth (255 or 65535), so lie in [0, 1];
        alpha is dropped and the EXIF orientation applied. A .npy array of shape (H, W),
        (H, W, 1), (H, W, 3) or (H, W, 4) (alpha dropped) keeps its values.

    Raises:
        FileNotFoundError: no file at `path`.
        ValueError: an unknown extension, a folder or unreadable file, an empty image,
            or a .npy array of another shape, a non-numeric dtype or with NaN/inf values.
    """
    extension = _check_extension(path)
    source = repr(os.fspath(path))
    try:
        data = pathlib.Path(path).read_bytes()
    except FileNotFoundError:
        raise
    except OSError as error:  # a folder, a file we may not read
        raise ValueError(f"Could not read an image from {source}: {error.strerror}.") from error
    try:
        if extension == ".npy":
            array = np.load(io.BytesIO(data), allow_pickle=False)
            if not isinstance(array, np.ndarray):
                raise ValueError("a .npz archive of arrays, not one .npy array")
        elif extension in _TIFF:
            pixels, orientation, had_alpha = tiff.decode(data)
        elif data.startswith(png16.SIGNATURE) and data[24:25] == b"\x10":  # IHDR bit depth
            pixels, orientation, had_alpha = _read_png16(data)
        else:
            pixels, orientation, had_alpha = _read_pillow(data)
    except (OSError, SyntaxError, EOFError, ValueError, PIL.Image.DecompressionBombError) as error:
        raise ValueError(f"Could not read an image from {source}: {error}") from error
    if extension == ".npy":
        return _npy_image(array, f"in {source}")
    _check_image(pixels, (1, 3), f"in {source}")
    image = _orient(pixels, orientation)
    if pixels.dtype.kind == "f":  # a float TIFF: values kept
        return image, ImageFormat(extension, tiff.FLOAT_DEPTH, image.shape[-1], had_alpha)
    full_scale = np.iinfo(pixels.dtype).max
    image = image.astype(np.float32) / np.float32(full_scale)
    bit_depth = 16 if full_scale == 65535 else 8
    return image, ImageFormat(extension, bit_depth, image.shape[-1], had_alpha)


def kept_depth(path, bit_depth):
    """`bit_depth` (an `ImageFormat.bit_depth`) where the format of `path`'s extension
    writes it, else None (the format's default): 16-bit PNG in, 16-bit TIFF out; a float
    TIFF's 32 kept by TIFF only."""
    return bit_depth if bit_depth in _FORMAT_DEPTHS.get(_check_extension(path), ()) else None


def _encode_pillow(pixels, extension):
    """uint8 (H, W, C), C in {1, 3} -> PNG or JPEG (quality 95) bytes."""
    image = PIL.Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
    buffer = io.BytesIO()
    if extension in _JPEG:
        image.save(buffer, format="JPEG", quality=95)
    else:
        image.save(buffer, format="PNG")
    return buffer.getvalue()


def _quantise(image, bit_depth, rows=256):
    """[0, 1] floats (H, W, C) -> integers 0 .. 2^bit_depth - 1, rounded and clipped, a
    block of rows at a time (no full-size float64 copy of a large photograph)."""
    full_scale = 2**bit_depth - 1
    pixels = np.empty(image.shape, np.uint16 if bit_depth == 16 else np.uint8)
    for start in range(0, len(image), rows):
        block = image[start : start + rows].astype(np.float64) * full_scale
        pixels[start : start + rows] = np.clip(np.round(block), 0, full_scale)
    return pixels


def write_image(path, image, bit_depth=None):
    """Writes a float image as PNG, JPEG, TIFF or .npy (by the path's extension), atomically.

    Args:
        path: a file ending in one of `FORMATS`; missing parent folders are created.
        image: float (H, W), (H, W, 1) or (H, W, 3), finite. For PNG/JPEG/TIFF of 8 or 16
            bits, values in [0, 1] are scaled to the bit depth's full scale (255 or 65535),
            rounded and clipped; .npy and 32-bit (float) TIFF store them unchanged as
            float32.
        bit_depth: 8 or 16 for PNG (None: 8), 8, 16 or 32 for TIFF (None: 8), 8 or None
            for JPEG; ignored for .npy.

    Raises:
        ValueError: an unknown extension, a non-float, empty or non-finite image of another
            shape, a bit depth not in `BIT_DEPTHS`, or one the format does not write.
        files.WriteFailed: the file cannot be written (a full disk, a read-only folder,
            `path` a folder); nothing is left half-written.
    """
    extension = _check_extension(path)
    image = np.asarray(image)
    if bit_depth is not None and bit_depth not in BIT_DEPTHS:
        raise ValueError(f"Expected bit_depth 8, 16, 32 or None (8). Received {bit_depth!r}.")
    if extension != ".npy" and bit_depth not in (None, *_FORMAT_DEPTHS[extension]):
        depths = ", ".join(map(str, _FORMAT_DEPTHS[extension]))
        raise ValueError(
            f"Expected bit_depth {depths} or None for {extension} (16 bits: write a .png or "
            f".tif; float: a .tif or .npy). Received bit_depth={bit_depth} for "
            f"{os.fspath(path)!r}."
        )
    if image.dtype.kind != "f":
        raise ValueError(
            f"Expected a float image (values in [0, 1] for PNG/JPEG). Received dtype {image.dtype}."
        )
    _check_image(image, (1, 3), f"to write to {os.fspath(path)!r}")
    if extension == ".npy":
        buffer = io.BytesIO()
        np.save(buffer, image.astype(np.float32))
        data = buffer.getvalue()
    elif bit_depth == tiff.FLOAT_DEPTH:
        data = tiff.encode(np.atleast_3d(image).astype(np.float32))
    else:
        pixels = _quantise(np.atleast_3d(image), bit_depth or 8)
        if extension in _TIFF:
            data = tiff.encode(pixels)
        elif bit_depth == 16:
            data = png16.encode(pixels)
        else:
            data = _encode_pillow(pixels, extension)
    make_folder(pathlib.Path(path).parent)
    replace_atomically(path, lambda temporary: temporary.write_bytes(data))
