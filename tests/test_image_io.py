"""Image reading and writing (image_io) and the 16-bit PNG codec (png16)."""

import os
import re
import struct
import subprocess
import sys
import zlib

import numpy as np
import PIL.Image
import PIL.ImageOps
import pytest

from diffnet_tf import image_io, png16

ORIENTATION = 0x0112


def rows16(samples):
    """uint16 (H, W, S) -> the PNG rows' bytes (big-endian samples)."""
    return [row.astype(">u2").tobytes() for row in samples]


def filter_row(kind, row, prior, bpp):
    """One row filtered byte by byte as the PNG specification writes it (Sect. 9.2)."""
    out = bytearray([kind])
    for i, x in enumerate(row):
        a, b = row[i - bpp] if i >= bpp else 0, prior[i]
        c = prior[i - bpp] if i >= bpp else 0
        p = a + b - c
        pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
        paeth = a if pa <= pb and pa <= pc else b if pb <= pc else c
        out.append((x - (0, a, b, (a + b) // 2, paeth)[kind]) % 256)
    return bytes(out)


def chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def reference_png(rows, width, depth, colour, bpp, filters=0, interlace=0, chunks=()):
    """A PNG of raw row bytes, filtered by `filters` (one type, or one per row); a reference
    encoder independent of png16."""
    types = filters if isinstance(filters, list) else [filters] * len(rows)
    prior, lines = bytes(len(rows[0]) if rows else 0), b""
    for kind, row in zip(types, rows):
        lines += filter_row(kind, row, prior, bpp)
        prior = row
    header = struct.pack(">IIBBBBB", width, len(rows), depth, colour, 0, 0, interlace)
    body = b"".join(chunk(kind, data) for kind, data in chunks)
    return (png16.SIGNATURE + chunk(b"IHDR", header) + body
            + chunk(b"IDAT", zlib.compress(lines)) + chunk(b"IEND", b""))


def png16_file(samples, filters=0, **kwargs):
    colour = {1: 0, 2: 4, 3: 2, 4: 6}[samples.shape[-1]]
    return reference_png(rows16(samples), samples.shape[1], 16, colour, 2 * samples.shape[-1],
                         filters, **kwargs)


def random16(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 65536, shape, dtype=np.uint16)


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def as16(image):
    return np.round(image.astype(np.float64) * 65535).astype(np.uint16)


# Round trips.


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("bit_depth", [8, 16])
def test_png_round_trip_is_exact(tmp_path, channels, bit_depth):
    full = 2**bit_depth - 1
    values = np.random.default_rng(1).integers(0, full + 1, (5, 7, channels))
    path = tmp_path / "a.png"
    image_io.write_image(path, values / full, bit_depth=bit_depth)
    image, image_format = image_io.read_image(path)
    assert image.dtype == np.float32 and image.shape == (5, 7, channels)
    np.testing.assert_array_equal(np.round(image.astype(np.float64) * full), values)
    assert image_format == image_io.ImageFormat(".png", bit_depth, channels, False)


@pytest.mark.parametrize("shape", [(4, 6), (4, 6, 1), (4, 6, 3)])
def test_npy_round_trip_keeps_float32_values(tmp_path, shape):
    values = np.random.default_rng(2).normal(size=shape).astype(np.float32) * 1e3
    image_io.write_image(tmp_path / "a.npy", values)
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), values)
    image, image_format = image_io.read_image(tmp_path / "a.npy")
    np.testing.assert_array_equal(image, values.reshape(4, 6, -1))
    assert image_format == image_io.ImageFormat(".npy", None, image.shape[-1], False)


def test_write_scales_rounds_and_clips(tmp_path):
    image_io.write_image(tmp_path / "a.png", np.array([[-1.0, 0.25, 0.5, 1.0, 2.0]]), 16)
    image, _ = image_io.read_image(tmp_path / "a.png")
    np.testing.assert_array_equal(as16(image)[0, :, 0], [0, 16384, 32768, 65535, 65535])


@pytest.mark.parametrize("extension", [".jpg", ".jpeg", ".JPG"])
def test_jpeg_round_trip_is_close(tmp_path, extension):
    y, x = np.mgrid[:16, :24] / 24
    smooth = np.stack([x, y, 1 - x], axis=-1)
    image_io.write_image(tmp_path / f"a{extension}", smooth)
    image, image_format = image_io.read_image(tmp_path / f"a{extension}")
    assert np.abs(image - smooth).max() < 0.05
    assert image_format == image_io.ImageFormat(extension.lower(), 8, 3, False)


def test_sixteen_bit_png_is_readable_by_pillow(tmp_path):
    values = random16((6, 5, 1), seed=3)
    image_io.write_image(tmp_path / "a.png", values / 65535, bit_depth=16)
    with PIL.Image.open(tmp_path / "a.png") as image:  # Pillow reads 16-bit grey exactly
        np.testing.assert_array_equal(np.asarray(image), values[..., 0])


# The decoder against other encoders.


@pytest.mark.parametrize("filters", [0, 1, 2, 3, 4, [4, 3, 0, 1, 2, 4, 3]], ids=str)
@pytest.mark.parametrize("channels", [1, 3])
def test_decoder_reads_every_row_filter(tmp_path, filters, channels):
    values = random16((7, 9, channels), seed=channels)
    values[:, :5] = values[:, :5] % 16 * 257  # small bytes: Paeth's ties between a, b and c
    path = write(tmp_path, "a.png", png16_file(values, filters))
    np.testing.assert_array_equal(as16(image_io.read_image(path)[0]), values)


def test_decoder_bands_join_up(monkeypatch):
    monkeypatch.setattr(png16, "_BAND_ROWS", 2)  # 7 rows: bands of 2, 2, 2 and 1
    values = random16((7, 5, 3), seed=4)
    samples, _ = png16.decode(png16_file(values, [4, 3, 2, 1, 0, 4, 3]))
    np.testing.assert_array_equal(samples, values)


@pytest.mark.parametrize("channels", [1, 3])
def test_decoder_reads_libpng_files(tmp_path, channels):
    tf = pytest.importorskip("tensorflow")
    y, x = np.mgrid[:24, :32]
    noise = np.random.default_rng(5).integers(0, 40, (24, 32, channels))
    values = (20000 + 800 * x[..., None] + 300 * y[..., None] + noise).astype(np.uint16)
    data = tf.io.encode_png(tf.constant(values)).numpy()
    lines = zlib.decompressobj().decompress(data[data.index(b"IDAT") + 4 :])
    assert {lines[i * (64 * channels + 1)] for i in range(24)} - {0}  # libpng filtered
    path = write(tmp_path, "a.png", data)
    np.testing.assert_array_equal(as16(image_io.read_image(path)[0]), values)


@pytest.mark.parametrize("channels", [1, 3])
def test_libpng_reads_the_encoder_files(tmp_path, channels):
    tf = pytest.importorskip("tensorflow")
    values = random16((6, 8, channels), seed=6)
    image_io.write_image(tmp_path / "a.png", values / 65535, bit_depth=16)
    decoded = tf.io.decode_png(tf.io.read_file(str(tmp_path / "a.png")), dtype=tf.uint16)
    np.testing.assert_array_equal(decoded.numpy(), values)


# Alpha, palettes, low bit depths.


@pytest.mark.parametrize("samples", [2, 4])
def test_sixteen_bit_alpha_is_dropped(tmp_path, samples):
    values = random16((4, 5, samples), seed=7)
    path = write(tmp_path, "a.png", png16_file(values, 4))
    image, image_format = image_io.read_image(path)
    np.testing.assert_array_equal(as16(image), values[..., : samples - 1])
    assert image_format == image_io.ImageFormat(".png", 16, samples - 1, True)


@pytest.mark.parametrize("mode", ["LA", "RGBA"])
def test_eight_bit_alpha_is_dropped(tmp_path, mode):
    values = np.random.default_rng(8).integers(0, 256, (4, 5, len(mode)), dtype=np.uint8)
    PIL.Image.fromarray(values, mode).save(tmp_path / "a.png")
    image, image_format = image_io.read_image(tmp_path / "a.png")
    np.testing.assert_array_equal(np.round(image * 255), values[..., :-1])
    assert image_format == image_io.ImageFormat(".png", 8, len(mode) - 1, True)


@pytest.mark.parametrize("bit_depth", [8, 16])
def test_transparency_chunk_counts_as_alpha(tmp_path, bit_depth):
    values = random16((3, 4, 1), seed=13) // (257 if bit_depth == 8 else 1)
    if bit_depth == 8:
        PIL.Image.fromarray(values[..., 0].astype(np.uint8)).save(tmp_path / "a.png",
                                                                  transparency=0)
    else:
        write(tmp_path, "a.png", png16_file(values, chunks=[(b"tRNS", b"\x00\x00")]))
    image, image_format = image_io.read_image(tmp_path / "a.png")
    np.testing.assert_array_equal(np.round(image * (2**bit_depth - 1)), values)
    assert image_format == image_io.ImageFormat(".png", bit_depth, 1, True)


@pytest.mark.parametrize("bits", [1, 2, 4])
def test_palette_png_reads_as_rgb(tmp_path, bits):
    palette = np.random.default_rng(9).integers(0, 256, (2**bits, 3), dtype=np.uint8)
    indices = np.arange(24, dtype=np.uint8).reshape(4, 6) % 2**bits
    image = PIL.Image.fromarray(indices, "P")
    image.putpalette(palette.ravel().tolist())
    image.save(tmp_path / "a.png", bits=bits)
    read, image_format = image_io.read_image(tmp_path / "a.png")
    np.testing.assert_array_equal(np.round(read * 255), palette[indices])
    assert image_format == image_io.ImageFormat(".png", 8, 3, False)


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_low_bit_depth_grey_reads_scaled_to_eight_bits(tmp_path, depth):
    values = np.random.default_rng(10).integers(0, 2**depth, (3, 8))
    packed = [np.packbits(np.unpackbits(row.astype(np.uint8)[:, None], axis=1)[:, -depth:])
              for row in values]
    path = write(tmp_path, "a.png", reference_png([p.tobytes() for p in packed], 8, depth, 0, 1))
    image, image_format = image_io.read_image(path)
    np.testing.assert_array_equal(np.round(image[..., 0] * (2**depth - 1)), values)
    assert image_format == image_io.ImageFormat(".png", 8, 1, False)


# EXIF orientation.


def exif_transposed(samples, orientation):
    """PIL.ImageOps.exif_transpose of each channel of (H, W, C), tagged with `orientation`."""
    channels = []
    for channel in np.moveaxis(samples, -1, 0):
        image = PIL.Image.fromarray(channel.astype(np.float32))
        image.getexif()[ORIENTATION] = orientation
        channels.append(np.asarray(PIL.ImageOps.exif_transpose(image)))
    return np.stack(channels, axis=-1)


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("kind", ["jpg", "png8", "png16"])
def test_exif_orientation_is_applied(tmp_path, kind, orientation):
    exif = PIL.Image.Exif()
    exif[ORIENTATION] = orientation
    values = np.random.default_rng(11).integers(0, 256, (4, 6, 3), dtype=np.uint8)
    path = tmp_path / f"a.{kind[:3]}"
    if kind == "png16":
        values = values.astype(np.uint16) * 257
        path.write_bytes(png16_file(values, chunks=[(b"eXIf", exif.tobytes()[6:])]))
    else:
        PIL.Image.fromarray(values).save(path, exif=exif)
        with PIL.Image.open(path) as image:
            values = np.asarray(image)  # the JPEG's decoded pixels, before orientation
    image, _ = image_io.read_image(path)
    scale = 65535 if kind == "png16" else 255
    np.testing.assert_array_equal(image, exif_transposed(values, orientation) / np.float32(scale))


# Reading errors.


@pytest.mark.parametrize("name", ["a.gif", "a", "a.png.bak"])
def test_unknown_extension_names_the_formats(tmp_path, name):
    for call in (lambda: image_io.read_image(tmp_path / name),
                 lambda: image_io.write_image(tmp_path / name, np.zeros((2, 2)))):
        with pytest.raises(ValueError, match=r"\.png, \.jpg, \.jpeg, \.tif, \.tiff, \.npy.*Received"):
            call()


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.png"):
        image_io.read_image(tmp_path / "missing.png")


def test_a_folder_is_neither_read_nor_written_over(tmp_path):
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(ValueError, match=r"Could not read an image from '.*dir.png': Is a "
                                         r"directory\."):
        image_io.read_image(tmp_path / "dir.png")
    with pytest.raises(OSError, match=r"Could not write '.*dir.png': Is a directory\.$"):
        image_io.write_image(tmp_path / "dir.png", np.zeros((2, 2)))
    assert (tmp_path / "dir.png").is_dir() and os.listdir(tmp_path) == ["dir.png"]


@pytest.mark.parametrize("name", ["a.jpg", "b.png", "c.png", "d.npy"])
@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_damaged_files_cannot_be_read(tmp_path, name, damage):
    path = tmp_path / name
    if name == "c.png":
        path.write_bytes(png16_file(random16((8, 8, 3)), 4))
    else:
        image_io.write_image(path, np.zeros((8, 8, 3)))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"\x00garbage" * 20)
    with pytest.raises(ValueError, match=f"Could not read an image from '{re.escape(str(path))}'"):
        image_io.read_image(path)


def test_npz_archive_named_npy_cannot_be_read(tmp_path):
    with open(tmp_path / "a.npy", "wb") as file:
        np.savez(file, image=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="Could not read .*: a .npz archive of arrays"):
        image_io.read_image(tmp_path / "a.npy")


def damaged16(damage):
    """A 16-bit PNG damaged in one way, with a message png16 gives."""
    values = random16((4, 4, 3))
    good = png16_file(values)
    header = struct.pack(">IIBBBBB", 4, 4, 16, 2, 0, 0, 0)
    if damage == "crc":
        return good[:-20] + bytes([good[-20] ^ 1]) + good[-19:], "CRC mismatch in chunk IDAT"
    if damage == "cut in a chunk":
        return good[:60], "truncated \\(inside chunk IDAT\\)"
    if damage == "no IEND":
        return good[:-12], "truncated \\(no IEND chunk\\)"
    lines = {"short data": zlib.compress(bytes(30)), "bad zlib": b"not zlib",
             "filter 5": zlib.compress(b"\x05" + bytes(99))}  # 4 rows of 1 + 24 bytes
    reasons = {"short data": "expected 100 bytes of image data, found 30",
               "bad zlib": "damaged image data", "filter 5": "unknown row filter type 5"}
    if damage in lines:
        body = chunk(b"IHDR", header) + chunk(b"IDAT", lines[damage]) + chunk(b"IEND", b"")
        return png16.SIGNATURE + body, reasons[damage]
    if damage == "bad IHDR":
        return png16.SIGNATURE + chunk(b"IHDR", header + b"\x00") + chunk(b"IEND", b""), "IHDR"
    if damage == "palette":
        return reference_png([bytes(4)], 4, 16, 3, 1), "found bit depth 16, colour type 3"
    return png16_file(values, interlace=1), "interlaced \\(Adam7\\) 16-bit PNGs are not supported"


@pytest.mark.parametrize("damage", ["crc", "cut in a chunk", "no IEND", "short data",
                                    "bad zlib", "filter 5", "bad IHDR", "palette", "interlaced"])
def test_damaged_sixteen_bit_png_says_why(tmp_path, damage):
    data, reason = damaged16(damage)
    path = write(tmp_path, "a.png", data)
    message = f"Could not read an image from '{re.escape(str(path))}': .*{reason}"
    with pytest.raises(ValueError, match=message):
        image_io.read_image(path)


def test_png16_decode_rejects_other_files():
    with pytest.raises(ValueError, match="not a PNG file"):
        png16.decode(b"\xff\xd8\xff\xe0 a JPEG")


def test_sixteen_bit_decompression_bomb_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(PIL.Image, "MAX_IMAGE_PIXELS", 10)
    path = write(tmp_path, "a.png", png16_file(random16((5, 5, 1))))
    with pytest.raises(ValueError, match="5x5 pixels is over twice PIL.Image.MAX_IMAGE_PIXELS"):
        image_io.read_image(path)


@pytest.mark.parametrize("shape", [(0, 0), (0, 3), (3, 0, 1)])
def test_empty_images_are_refused(tmp_path, shape):
    np.save(tmp_path / "a.npy", np.zeros(shape, np.float32))
    rows = [b""] * shape[0] if shape[1] == 0 else []
    write(tmp_path, "a.png", reference_png(rows, shape[1], 16, 0, 2))
    message = rf"Expected a non-empty image .* Received shape \({shape[0]}, {shape[1]}"
    for name in ("a.npy", "a.png"):
        with pytest.raises(ValueError, match=message):
            image_io.read_image(tmp_path / name)
    with pytest.raises(ValueError, match=message):
        image_io.write_image(tmp_path / "b.png", np.zeros(shape))


@pytest.mark.parametrize("shape", [(5,), (2, 2, 2), (2, 2, 5), (1, 2, 2, 1)])
def test_npy_of_another_shape_says_which_are_accepted(tmp_path, shape):
    np.save(tmp_path / "a.npy", np.zeros(shape))
    accepted = re.escape(f"(H, W), (H, W, 1), (H, W, 3), (H, W, 4) in '{tmp_path / 'a.npy'}'")
    with pytest.raises(ValueError, match=f"{accepted}. Received shape {re.escape(str(shape))}"):
        image_io.read_image(tmp_path / "a.npy")


def test_npy_with_four_channels_drops_alpha(tmp_path):
    values = np.random.default_rng(12).random((3, 4, 4)).astype(np.float32)
    np.save(tmp_path / "a.npy", values)
    image, image_format = image_io.read_image(tmp_path / "a.npy")
    np.testing.assert_array_equal(image, values[..., :3])
    assert image_format == image_io.ImageFormat(".npy", None, 3, True)


@pytest.mark.parametrize("values", [np.array([["a", "b"]]), np.ones((2, 2), bool),
                                    np.ones((2, 2), complex)], ids=str)
def test_npy_of_a_non_numeric_dtype_is_refused(tmp_path, values):
    np.save(tmp_path / "a.npy", values)
    with pytest.raises(ValueError, match=f"real numeric array .* Received dtype {values.dtype}"):
        image_io.read_image(tmp_path / "a.npy")


@pytest.mark.parametrize("bad", [np.nan, np.inf, 1e300])  # 1e300 overflows float32
def test_npy_with_nan_or_inf_names_the_path(tmp_path, bad):
    values = np.zeros((3, 3))
    values[1, 2] = bad
    np.save(tmp_path / "a.npy", values)
    where = re.escape(str(tmp_path / "a.npy"))
    with pytest.raises(ValueError, match=f"finite values in '{where}'. Received 1 NaN"):
        image_io.read_image(tmp_path / "a.npy")


# Writing errors and atomicity.


@pytest.mark.parametrize("shape", [(4,), (2, 2, 2), (2, 2, 4), (1, 2, 2, 1)])
def test_write_refuses_other_shapes(tmp_path, shape):
    with pytest.raises(ValueError, match=r"\(H, W\), \(H, W, 1\), \(H, W, 3\) to write to"):
        image_io.write_image(tmp_path / "a.png", np.zeros(shape))


def test_write_refuses_integer_and_non_finite_images(tmp_path):
    with pytest.raises(ValueError, match="Expected a float image .* Received dtype uint8"):
        image_io.write_image(tmp_path / "a.png", np.zeros((2, 2), np.uint8))
    with pytest.raises(ValueError, match="Expected finite values .* Received 1 NaN"):
        image_io.write_image(tmp_path / "a.npy", np.array([[0.0, np.nan]]))


@pytest.mark.parametrize("bit_depth", [0, 12, 64, "16"])
def test_write_refuses_other_bit_depths(tmp_path, bit_depth):
    with pytest.raises(ValueError, match=f"Expected bit_depth 8, 16, 32 or None .* {bit_depth!r}"):
        image_io.write_image(tmp_path / "a.png", np.zeros((2, 2)), bit_depth=bit_depth)


@pytest.mark.parametrize("name, bit_depth, expected", [
    ("a.jpg", 16, "8"), ("a.jpeg", 16, "8"), ("a.jpg", 32, "8"), ("a.png", 32, "8, 16")])
def test_write_refuses_depths_the_format_does_not_hold(tmp_path, name, bit_depth, expected):
    suffix = os.path.splitext(name)[1]
    with pytest.raises(ValueError, match=f"bit_depth {expected} or None for \\{suffix}.*"
                                         f"Received bit_depth={bit_depth}"):
        image_io.write_image(tmp_path / name, np.zeros((2, 2)), bit_depth=bit_depth)
    assert not list(tmp_path.iterdir())


def test_interrupted_write_leaves_the_old_file(tmp_path, monkeypatch):
    image_io.write_image(tmp_path / "a.png", np.zeros((2, 2)))
    old = (tmp_path / "a.png").read_bytes()

    def killed(source, target):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        image_io.write_image(tmp_path / "a.png", np.ones((2, 2)))
    assert (tmp_path / "a.png").read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]  # no temporary file left


def test_write_creates_folders_with_ordinary_permissions(tmp_path):
    image_io.write_image(tmp_path / "out" / "a.npy", np.zeros((2, 2)))
    (tmp_path / "out" / "plain").write_bytes(b"")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.npy", "plain"]
    mode = (tmp_path / "out" / "a.npy").stat().st_mode
    assert mode == (tmp_path / "out" / "plain").stat().st_mode


def test_modules_import_without_tensorflow():
    package = os.path.dirname(image_io.__file__)
    code = (
        "import sys, types\n"
        "sys.modules['tensorflow'] = sys.modules['keras'] = None  # importing them fails\n"
        "package = types.ModuleType('diffnet_tf')\n"  # skips the package's __init__
        f"package.__path__ = [{package!r}]\n"
        "sys.modules['diffnet_tf'] = package\n"
        "import diffnet_tf.image_io\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
