"""The TIFF codec of `image_io`: 8 and 16-bit unsigned and floating-point samples, grey or
colour, through tifffile (the optional extra `tiff`: pip install "diffnet_tf[tiff]").

Scientific cameras and microscopes write 16-bit and float TIFFs; they are read and written
at their depth. Only the first image (page) of a multi-page file is read. NumPy and
tifffile only; tifffile is imported when a TIFF is read or written.
"""

import io

import numpy as np

FLOAT_DEPTH = 32  # the bit depth `image_io` reports for floating-point samples
_MISSING = ("TIFF files need the tifffile package, which is not installed: "
            "pip install 'diffnet_tf[tiff]' (or pip install tifffile)")


def _tifffile():
    try:
        import tifffile
    except ImportError as error:
        raise ValueError(_MISSING) from error
    return tifffile


def decode(data):
    """TIFF bytes -> (samples (H, W, S), orientation, had_alpha), samples as stored.

    Args:
        data: the file's bytes.

    Returns:
        samples: uint8, uint16 or float32 (H, W, C), C in {1, 3}, alpha dropped (a grey
            image with alpha has S = 2, a colour one S = 4); float16/64 become float32.
        orientation: the TIFF Orientation tag (1 to 8, EXIF's numbering; 1 when absent).
        had_alpha: an alpha (extra) sample was dropped.

    Raises:
        ValueError: tifffile is missing, the bytes are no TIFF, or the samples are neither
            8/16-bit unsigned nor floating point.
    """
    tifffile = _tifffile()
    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            page = tif.pages[0]
            samples = page.asarray()
            separate = page.planarconfig == tifffile.PLANARCONFIG.SEPARATE
            tag = page.tags.get("Orientation")
            orientation = int(tag.value) if tag is not None else 1
    except tifffile.TiffFileError as error:
        raise ValueError(f"not a TIFF file ({error})") from None
    if separate and samples.ndim == 3:  # (S, H, W) -> (H, W, S)
        samples = np.moveaxis(samples, 0, -1)
    if samples.dtype.kind == "f":
        samples = samples.astype(np.float32)
    elif samples.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"Expected 8 or 16-bit unsigned or floating-point TIFF samples. "
                         f"Received dtype {samples.dtype}")
    samples = np.atleast_3d(samples)
    channels = 1 if samples.shape[-1] <= 2 else 3
    return samples[..., :channels], orientation, samples.shape[-1] != channels


def encode(samples):
    """(H, W, C) uint8, uint16 or float32 samples, C in {1, 3} -> uncompressed TIFF bytes
    (photometric 'minisblack' for grey, 'rgb' for colour)."""
    tifffile = _tifffile()
    buffer = io.BytesIO()
    colour = samples.shape[-1] == 3
    tifffile.imwrite(buffer, samples if colour else samples[..., 0],
                     photometric="rgb" if colour else "minisblack")
    return buffer.getvalue()
