"""Box drawing and the numpy/zlib PNG codec."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from graphopt_person import draw
from graphopt_person.draw import decode_png, draw_boxes, encode_png, read_png, text_size, write_png

RNG = np.random.default_rng(7)


def random_image(*shape: int) -> np.ndarray:
    return RNG.integers(0, 256, size=shape, dtype=np.uint8)


# ---------------------------------------------------------------- a reference PNG writer with filters
# Written from the PNG specification, independently of the decoder under test.


def paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def filter_row(kind: int, row: bytes, prior: bytes, bpp: int) -> bytes:
    out = bytearray()
    for i, x in enumerate(row):
        a = row[i - bpp] if i >= bpp else 0
        b = prior[i]
        c = prior[i - bpp] if i >= bpp else 0
        predictor = [0, a, b, (a + b) // 2, paeth(a, b, c)][kind]
        out.append((x - predictor) % 256)
    return bytes([kind]) + bytes(out)


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_with_filters(image: np.ndarray, filters: list[int], color_type: int, palette: bytes = b"") -> bytes:
    height, width = image.shape[:2]
    bpp = 1 if image.ndim == 2 else image.shape[2]
    rows = image.reshape(height, width * bpp)
    raw = bytearray()
    prior = bytes(width * bpp)
    for r in range(height):
        row = rows[r].tobytes()
        raw += filter_row(filters[r % len(filters)], row, prior, bpp)
        prior = row
    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    chunks = chunk(b"IHDR", header)
    if palette:
        chunks += chunk(b"PLTE", palette)
    # Split the data over two IDAT chunks, and add an ancillary chunk, as real files do.
    data = zlib.compress(bytes(raw), 9)
    middle = len(data) // 2
    chunks += chunk(b"tEXt", b"Comment\x00test") + chunk(b"IDAT", data[:middle]) + chunk(b"IDAT", data[middle:])
    return b"\x89PNG\r\n\x1a\n" + chunks + chunk(b"IEND", b"")


# ---------------------------------------------------------------- PNG codec


@pytest.mark.parametrize("shape", [(5, 7, 3), (5, 7), (1, 1, 3), (4, 3, 4), (6, 2, 2)])
def test_png_round_trip(shape: tuple[int, ...]) -> None:
    image = random_image(*shape)
    data = encode_png(image)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    decoded = decode_png(data)
    assert decoded.dtype == np.uint8
    np.testing.assert_array_equal(decoded, image)


def test_single_channel_images_decode_as_grey() -> None:
    image = random_image(3, 4, 1)
    np.testing.assert_array_equal(decode_png(encode_png(image)), image[:, :, 0])


def test_encoded_header_and_crcs() -> None:
    data = encode_png(random_image(2, 3, 3))
    (length,) = struct.unpack(">I", data[8:12])
    assert data[12:16] == b"IHDR" and length == 13
    assert struct.unpack(">IIBBBBB", data[16:29]) == (3, 2, 8, 2, 0, 0, 0)
    assert struct.unpack(">I", data[29:33])[0] == zlib.crc32(data[12:29])
    assert data.endswith(chunk(b"IEND", b""))


@pytest.mark.parametrize("kind", [0, 1, 2, 3, 4])
@pytest.mark.parametrize(("channels", "color_type"), [(3, 2), (1, 0), (4, 6), (2, 4)])
def test_decode_each_filter_type(kind: int, channels: int, color_type: int) -> None:
    image = random_image(6, 9, channels) if channels > 1 else random_image(6, 9)
    np.testing.assert_array_equal(decode_png(png_with_filters(image, [kind], color_type)), image)


def test_decode_mixed_filters() -> None:
    image = random_image(11, 13, 3)
    np.testing.assert_array_equal(decode_png(png_with_filters(image, [4, 3, 2, 1, 0, 4], 2)), image)


def test_decode_paeth_on_a_smooth_image() -> None:
    # Gradients exercise all three Paeth predictors, not only the noise case.
    y, x = np.mgrid[0:16, 0:16]
    image = np.stack([x * 16, y * 16, (x + y) * 8], axis=-1).astype(np.uint8)
    np.testing.assert_array_equal(decode_png(png_with_filters(image, [4], 2)), image)


def test_decode_palette_image() -> None:
    palette = bytes([255, 0, 0, 0, 255, 0, 0, 0, 255])
    indices = np.array([[0, 1, 2], [2, 1, 0]], dtype=np.uint8)
    decoded = decode_png(png_with_filters(indices, [1], 3, palette))
    expected = np.frombuffer(palette, dtype=np.uint8).reshape(3, 3)[indices]
    np.testing.assert_array_equal(decoded, expected)


def test_decode_rejects_corrupt_and_unsupported_files() -> None:
    data = bytearray(encode_png(random_image(4, 4, 3)))
    with pytest.raises(ValueError, match="signature"):
        decode_png(b"GIF89a" + bytes(data[6:]))
    corrupt = bytearray(data)
    corrupt[40] ^= 0xFF  # inside the IDAT chunk
    with pytest.raises(ValueError, match="CRC"):
        decode_png(bytes(corrupt))
    with pytest.raises(ValueError, match="truncated"):
        decode_png(bytes(data[:-20]))
    sixteen_bit = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 16, 2, 0, 0, 0))
    with pytest.raises(ValueError, match="bit depth 16"):
        decode_png(sixteen_bit + chunk(b"IDAT", zlib.compress(bytes(7))) + chunk(b"IEND", b""))
    interlaced = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 1))
    with pytest.raises(ValueError, match="interlaced"):
        decode_png(interlaced + chunk(b"IDAT", zlib.compress(bytes(2))) + chunk(b"IEND", b""))


def test_encode_rejects_bad_images() -> None:
    with pytest.raises(ValueError, match="uint8"):
        encode_png(np.zeros((2, 2, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="shape"):
        encode_png(np.zeros((2, 2, 5), dtype=np.uint8))
    with pytest.raises(ValueError, match="empty"):
        encode_png(np.zeros((0, 2, 3), dtype=np.uint8))


# ---------------------------------------------------------------- files


def test_write_and_read_png(tmp_path: Path) -> None:
    image = random_image(8, 5, 3)
    path = tmp_path / "frame.png"
    write_png(path, image)
    np.testing.assert_array_equal(read_png(path), image)
    assert os.listdir(tmp_path) == ["frame.png"]


def test_write_png_replaces_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "frame.png"
    path.write_bytes(b"old contents")
    image = random_image(3, 3)
    write_png(str(path), image)
    np.testing.assert_array_equal(read_png(str(path)), image)
    assert os.listdir(tmp_path) == ["frame.png"]


def test_write_png_leaves_nothing_on_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "frame.png"
    with pytest.raises(ValueError):
        write_png(path, np.zeros((2, 2), dtype=np.float64))
    assert os.listdir(tmp_path) == []

    path.write_bytes(b"old contents")

    def failing_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(draw.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        write_png(path, random_image(2, 2, 3))
    assert os.listdir(tmp_path) == ["frame.png"]
    assert path.read_bytes() == b"old contents"


def test_read_png_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("not an image", encoding="utf-8")
    with pytest.raises(ValueError, match=r"notes\.png is not a PNG file"):
        read_png(path)
    with pytest.raises(FileNotFoundError):
        read_png(tmp_path / "missing.png")


# ---------------------------------------------------------------- drawing


def outline(height: int, width: int, top: int, left: int, bottom: int, right: int, t: int = 1) -> np.ndarray:
    """The expected outline mask: rows top..bottom, columns left..right inclusive, t pixels wide."""
    mask = np.zeros((height + 40, width + 40), dtype=bool)  # margin so that boxes may leave the image
    top, left, bottom, right = top + 20, left + 20, bottom + 20, right + 20
    mask[top : top + t, left : right + 1] = True
    mask[bottom - t + 1 : bottom + 1, left : right + 1] = True
    mask[top : bottom + 1, left : left + t] = True
    mask[top : bottom + 1, right - t + 1 : right + 1] = True
    return mask[20 : 20 + height, 20 : 20 + width]


def drawn(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    return np.any(before != after, axis=-1)


def test_draws_exactly_the_outline() -> None:
    image = np.zeros((10, 12, 3), dtype=np.uint8)
    out = draw_boxes(image, np.array([[2, 3, 7, 8]], dtype=np.float32), color=(255, 0, 0), thickness=1)
    # Box [2, 7) × [3, 8): columns 2..6, rows 3..7.
    np.testing.assert_array_equal(drawn(image, out), outline(10, 12, 3, 2, 7, 6))
    assert out[3, 2].tolist() == [255, 0, 0]


def test_thick_outline_and_rounding() -> None:
    image = np.zeros((20, 20, 3), dtype=np.uint8)
    out = draw_boxes(image, np.array([[2.4, 2.6, 12.5, 15.49]]), thickness=2)
    # Edges round to the nearest pixel boundary: x 2..13, y 3..15 → columns 2..12, rows 3..14.
    np.testing.assert_array_equal(drawn(image, out), outline(20, 20, 3, 2, 14, 12, t=2))


def test_does_not_modify_the_input() -> None:
    image = random_image(16, 16, 3)
    before = image.copy()
    out = draw_boxes(image, np.array([[1, 1, 10, 10]]))
    np.testing.assert_array_equal(image, before)
    assert out is not image and not np.shares_memory(out, image)


def test_clips_boxes_at_the_border() -> None:
    image = np.zeros((10, 10, 3), dtype=np.uint8)
    out = draw_boxes(image, np.array([[-5, -5, 4, 4]]), thickness=1)
    # Only the right edge (column 3) and bottom edge (row 3) lie inside.
    np.testing.assert_array_equal(drawn(image, out), outline(10, 10, -5, -5, 3, 3))
    assert drawn(image, out).sum() == 7
    out = draw_boxes(image, np.array([[6, 2, 15, 8]]), thickness=1)
    np.testing.assert_array_equal(drawn(image, out), outline(10, 10, 2, 6, 7, 14))


def test_skips_boxes_outside_and_non_finite() -> None:
    image = np.zeros((10, 10, 3), dtype=np.uint8)
    boxes = np.array([[20, 20, 30, 30], [-30, 0, -10, 5], [np.nan, 0, 5, 5]], dtype=np.float32)
    np.testing.assert_array_equal(draw_boxes(image, boxes), image)
    np.testing.assert_array_equal(draw_boxes(image, np.zeros((0, 4))), image)


def test_labels_above_the_box() -> None:
    image = np.zeros((40, 40, 3), dtype=np.uint8)
    box = np.array([[5, 20, 30, 35]])
    out = draw_boxes(image, box, color=(0, 255, 0), thickness=1, labels=["0.97"])
    width, height = text_size("0.97")
    assert (width, height) == (23, 7)
    # Label: 9 rows (7 + padding) ending just above the box's top edge, 25 columns from its left.
    label = out[11:20, 5:30]
    green = np.all(label == [0, 255, 0], axis=-1)
    black = np.all(label == [0, 0, 0], axis=-1)
    assert np.all(green | black) and black.sum() > 20 and green.sum() > 20
    assert black[0].sum() == 0 and black[-1].sum() == 0  # padding rows
    assert np.all(out[:11] == 0) and np.all(out[11:20, 30:] == 0)
    # Dark colours get white text.
    out = draw_boxes(image, box, color=(0, 0, 128), thickness=1, labels=["P 12.3"])
    assert np.all(out[11:20, 5:40] == [255, 255, 255], axis=-1).sum() > 20


def test_label_goes_inside_when_no_room_above() -> None:
    image = np.zeros((30, 30, 3), dtype=np.uint8)
    out = draw_boxes(image, np.array([[0, 2, 20, 25]]), thickness=1, labels=["ab"])
    assert np.all(out[:2] == 0)
    assert np.any(np.all(out[3:11, 1:12] == [0, 0, 0], axis=-1))  # text pixels inside the box
    assert np.all(out[2:11, 0:13] == [0, 255, 0], axis=-1).sum() > 50  # filled label background


def test_lower_case_and_unknown_characters() -> None:
    image = np.zeros((20, 40, 3), dtype=np.uint8)
    box = np.array([[2, 12, 35, 19]])
    upper = draw_boxes(image, box, labels=["ABC"])
    np.testing.assert_array_equal(draw_boxes(image, box, labels=["abc"]), upper)
    np.testing.assert_array_equal(draw_boxes(image, box, labels=["~"]), draw_boxes(image, box, labels=["?"]))


def test_label_scale() -> None:
    assert text_size("12", scale=2) == (22, 14)
    image = np.zeros((60, 60, 3), dtype=np.uint8)
    out = draw_boxes(image, np.array([[5, 30, 50, 55]]), thickness=1, labels=["12"], label_scale=2)
    assert np.all(out[:14] == 0) and np.any(out[14:30] != 0)


def test_draw_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="RGB"):
        draw_boxes(np.zeros((4, 4), dtype=np.uint8), np.zeros((0, 4)))
    with pytest.raises(ValueError, match="labels"):
        draw_boxes(np.zeros((4, 4, 3), dtype=np.uint8), np.zeros((1, 4)), labels=[])
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        draw_boxes(np.zeros((4, 4, 3), dtype=np.uint8), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="thickness"):
        draw_boxes(np.zeros((4, 4, 3), dtype=np.uint8), np.zeros((1, 4)), thickness=0)
