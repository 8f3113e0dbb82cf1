"""A small PNG codec for 16-bit images, in NumPy and zlib (Pillow truncates 16-bit colour
PNGs to 8 bits and cannot write them).

Decodes non-interlaced 16-bit grey, grey + alpha, RGB and RGBA with any of the five row
filters (PNG specification, Sect. 9); encodes 16-bit grey and RGB with the Up filter.
"""

import struct
import zlib

import numpy as np
import PIL.Image

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SAMPLES = {0: 1, 4: 2, 2: 3, 6: 4}  # colour type -> samples per pixel (grey, +alpha, RGB, RGBA)
_BAND_ROWS = 1024  # rows per wavefront band: the skewed copy stays within twice a band
# Rows wa, wb, shift, is Paeth; one column per filter type (None, Sub, Up, Average, Paeth):
# the predictors but Paeth's are (wa * a + wb * b) >> shift (faster than np.choose).
_PREDICTORS = np.array(
    [[0, 1, 0, 1, 0], [0, 0, 1, 1, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1]], np.int16
)
_ZLIB_LEVEL = 3  # files within 1% of level 6's on photographs, written twice as fast


def _chunks(data):
    """{chunk type: [chunk data, ...]} of a PNG file up to IEND, CRCs checked."""
    if not data.startswith(SIGNATURE):
        raise ValueError("not a PNG file")
    view, position, chunks = memoryview(data), len(SIGNATURE), {}
    while True:
        if position + 12 > len(data):
            raise ValueError("the file is truncated (no IEND chunk)")
        length, kind = struct.unpack_from(">I4s", data, position)
        end = position + 8 + length
        if end + 4 > len(data):
            raise ValueError(f"the file is truncated (inside chunk {kind.decode('latin-1')})")
        body = view[position + 8 : end]
        if zlib.crc32(body, zlib.crc32(kind)) != int.from_bytes(data[end : end + 4], "big"):
            raise ValueError(f"CRC mismatch in chunk {kind.decode('latin-1')}")
        if kind == b"IEND":
            return chunks
        chunks.setdefault(kind, []).append(body)
        position = end + 4


def _header(chunks):
    """(height, width, samples per pixel) from the IHDR chunk of a 16-bit PNG."""
    if len(chunks.get(b"IHDR", [b""])[0]) != 13:
        raise ValueError("no valid IHDR chunk")
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"][0])
    if depth != 16 or colour not in _SAMPLES:
        raise ValueError(f"expected a 16-bit grey, grey+alpha, RGB or RGBA PNG; found bit "
                         f"depth {depth}, colour type {colour}")
    if interlace:
        raise ValueError("interlaced (Adam7) 16-bit PNGs are not supported; save it again "
                         "without interlacing")
    limit = PIL.Image.MAX_IMAGE_PIXELS  # Pillow's decompression-bomb guard, shared
    if limit and width * height > 2 * limit:
        raise ValueError(f"{width}x{height} pixels is over twice PIL.Image.MAX_IMAGE_PIXELS "
                         f"({limit}): a decompression bomb?")
    return height, width, _SAMPLES[colour]


def _unfilter_band(filtered, types, previous):
    """Reconstructs rows from their filtered bytes (PNG specification, Sect. 9.2).

    Byte x of a row is predicted from the reconstructed bytes left (a), up (b) and upper
    left (c) of it, one pixel away: so all pixels of an anti-diagonal x + y = t depend only
    on earlier anti-diagonals. The rows are stored skewed, pixel (y, x) at [x + y + 2,
    y + 1], so each anti-diagonal is one slice and is reconstructed in one step for all of
    its pixels and byte lanes.

    Args:
        filtered: uint8 (rows, W, bytes per pixel), the rows without their filter bytes.
        types: (rows,) filter types, 0 None, 1 Sub, 2 Up, 3 Average, 4 Paeth.
        previous: uint8 (W, bytes per pixel), the reconstructed row above (zeros at the top).

    Returns:
        uint8 (rows, W, bytes per pixel).
    """
    rows, width, lanes = filtered.shape
    skewed = np.zeros((width + rows + 1, rows + 1, lanes), np.uint8)
    skewed[1 : width + 1, 0] = previous  # row y = -1; x = -1 stays zero
    for y in range(rows):
        skewed[y + 2 : y + 2 + width, y + 1] = filtered[y]
    wa, wb, shift, is_paeth = _PREDICTORS[:, types, None]  # each (rows, 1)
    for t in range(width + rows - 1):
        first, last = max(0, t - width + 1), min(rows, t + 1)  # rows crossing diagonal t
        a = skewed[t + 1, first + 1 : last + 1].astype(np.int16)
        b = skewed[t + 1, first:last].astype(np.int16)
        c = skewed[t, first:last].astype(np.int16)
        pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)  # |p - a|, ... for p = a + b - c
        paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
        linear = (wa[first:last] * a + wb[first:last] * b) >> shift[first:last]
        prediction = np.where(is_paeth[first:last], paeth, linear)
        skewed[t + 2, first + 1 : last + 1] += prediction.astype(np.uint8)  # modulo 256
    return np.stack([skewed[y + 2 : y + 2 + width, y + 1] for y in range(rows)])


def decode(data):
    """Decodes a non-interlaced 16-bit PNG.

    Args:
        data: the file's bytes.

    Returns:
        (samples, chunks): samples is uint16 (H, W, S), S = 1 grey, 2 grey + alpha, 3 RGB,
        4 RGBA; chunks maps each chunk type to the list of its data (e.g. b"eXIf").

    Raises:
        ValueError: not such a PNG, or a damaged one (truncated, bad CRC or image data).
    """
    chunks = _chunks(data)
    height, width, samples = _header(chunks)
    stride = width * 2 * samples
    expected = height * (stride + 1)  # a filter-type byte, then the row
    try:  # at most `expected` bytes, however far the data would inflate
        raw = zlib.decompressobj().decompress(b"".join(chunks.get(b"IDAT", [])), expected)
    except zlib.error as error:
        raise ValueError(f"damaged image data ({error})") from None
    if len(raw) != expected:
        raise ValueError(f"expected {expected} bytes of image data, found {len(raw)}")
    rows = np.frombuffer(raw, np.uint8).reshape(height, stride + 1)
    types = rows[:, 0].astype(np.intp)
    if height and types.max() > 4:
        raise ValueError(f"unknown row filter type {types.max()} (expected 0 to 4)")
    filtered = rows[:, 1:].reshape(height, width, 2 * samples)
    reconstructed, previous = np.empty_like(filtered), np.zeros((width, 2 * samples), np.uint8)
    for start in range(0, height, _BAND_ROWS):
        band = slice(start, start + _BAND_ROWS)
        reconstructed[band] = _unfilter_band(filtered[band], types[band], previous)
        previous = reconstructed[band][-1]
    return reconstructed.view(">u2").astype(np.uint16), chunks


def _chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def encode(samples):
    """Encodes uint16 (H, W, C), C = 1 grey or 3 RGB, as a 16-bit PNG, every row filtered
    with Up (each byte minus the one above, modulo 256)."""
    height, width, channels = samples.shape
    rows = samples.astype(">u2").view(np.uint8).reshape(height, -1)
    filtered = rows.copy()
    filtered[1:] -= rows[:-1]
    lines = np.concatenate([np.full((height, 1), 2, np.uint8), filtered], axis=1)
    header = struct.pack(">IIBBBBB", width, height, 16, 0 if channels == 1 else 2, 0, 0, 0)
    image_data = zlib.compress(lines.tobytes(), _ZLIB_LEVEL)
    return SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", image_data) + _chunk(b"IEND", b"")
