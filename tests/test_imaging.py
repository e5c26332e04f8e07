"""Pictures in and out (Pillow), fitted to a frame size, with boxes and labels drawn on them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from graphopt.errors import GraphoptError, ModelSaveError
from graphopt.imaging import draw_boxes, fit_frame, read_image, text_mask, text_size, write_image

RNG = np.random.default_rng(7)


def random_image(*shape: int) -> np.ndarray:
    return RNG.integers(0, 256, size=shape, dtype=np.uint8)


@pytest.mark.parametrize("shape", [(5, 7, 3), (1, 1, 3), (480, 640, 3)])
def test_png_round_trip_is_exact(tmp_path: Path, shape: tuple[int, ...]) -> None:
    image = random_image(*shape)
    write_image(tmp_path / "a.png", image)
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), image)
    assert Image.open(tmp_path / "a.png").format == "PNG"


def test_jpeg_grey_and_alpha_pictures_come_in_as_rgb(tmp_path: Path) -> None:
    smooth = np.repeat(np.linspace(0, 255, 64, dtype=np.uint8)[None, :, None], 48, axis=0).repeat(3, axis=2)
    write_image(tmp_path / "a.jpg", smooth)
    assert Image.open(tmp_path / "a.jpg").format == "JPEG"
    back = read_image(tmp_path / "a.jpg")
    assert back.shape == (48, 64, 3) and np.abs(back.astype(int) - smooth).max() <= 8
    Image.fromarray(smooth[:, :, 0]).save(tmp_path / "grey.png")
    np.testing.assert_array_equal(read_image(tmp_path / "grey.png"), smooth)
    Image.fromarray(np.dstack([smooth, np.full((48, 64), 255, np.uint8)])).save(tmp_path / "rgba.png")
    np.testing.assert_array_equal(read_image(tmp_path / "rgba.png"), smooth)


def test_write_replaces_an_existing_file_and_leaves_nothing_on_error(tmp_path: Path) -> None:
    target = tmp_path / "a.png"
    write_image(target, random_image(4, 4, 3))
    image = random_image(6, 5, 3)
    write_image(target, image)
    np.testing.assert_array_equal(read_image(target), image)
    with pytest.raises(ModelSaveError, match="cannot write the image"):
        write_image(tmp_path / "missing" / "a.png", image)
    with pytest.raises(ValueError, match="uint8"):
        write_image(target, image.astype(np.float32))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


def test_unreadable_pictures_are_one_sentence_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(GraphoptError, match=r"missing\.png: no such image file"):
        read_image(tmp_path / "missing.png")
    (tmp_path / "bad.png").write_bytes(b"not a picture")
    with pytest.raises(GraphoptError, match=r"bad\.png is not an image file Pillow can read"):
        read_image(tmp_path / "bad.png")


def test_letterbox_keeps_the_aspect_and_maps_boxes_back() -> None:
    picture = random_image(300, 800, 3)
    frame, fit = fit_frame(picture, 480, 640)
    assert frame.shape == (480, 640, 3)
    assert fit.scale_x == fit.scale_y == pytest.approx(0.8) and (fit.offset_x, fit.offset_y) == (0.0, 120.0)
    assert np.all(frame[:120] == 114) and np.all(frame[360:] == 114) and not np.all(frame[120:360] == 114)
    box_in_frame = np.array([[80.0, 160.0, 240.0, 280.0]])
    np.testing.assert_allclose(fit.to_picture(box_in_frame), [[100.0, 50.0, 300.0, 200.0]])


def test_stretching_and_a_frame_of_the_right_size() -> None:
    picture = random_image(240, 320, 3)
    frame, fit = fit_frame(picture, 480, 640, letterbox=False)
    assert frame.shape == (480, 640, 3) and (fit.scale_x, fit.scale_y) == (2.0, 2.0)
    same, fit = fit_frame(picture, 240, 320)
    assert same is picture and fit.to_picture(np.array([[1.0, 2.0, 3.0, 4.0]])).tolist() == [[1.0, 2.0, 3.0, 4.0]]


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
    image = np.zeros((60, 80, 3), dtype=np.uint8)
    box = np.array([[5, 40, 70, 55]])
    out = draw_boxes(image, box, color=(0, 255, 0), thickness=1, labels=["0.97"])
    width, height = text_size("0.97")
    assert 10 < width < 40 and 5 <= height <= 14
    # Label: text height plus a pixel of padding above and below, ending just above the box's top edge.
    label_top = 40 - (height + 2)
    label = out[label_top:40, 5 : 5 + width + 2]
    green = np.all(label == [0, 255, 0], axis=-1)
    black = np.all(label == [0, 0, 0], axis=-1)
    assert np.all(green | black) and black.sum() > 10 and green.sum() > 10
    assert black[0].sum() == 0 and black[-1].sum() == 0  # padding rows
    assert np.all(out[:label_top] == 0) and np.all(out[label_top:40, 5 + width + 2 :] == 0)
    # Dark colours get white text.
    out = draw_boxes(image, box, color=(0, 0, 128), thickness=1, labels=["P 12.3"])
    assert np.all(out[label_top:40, 5:75] == [255, 255, 255], axis=-1).sum() > 10


def test_label_goes_inside_when_no_room_above() -> None:
    image = np.zeros((40, 40, 3), dtype=np.uint8)
    out = draw_boxes(image, np.array([[0, 2, 30, 35]]), thickness=1, labels=["ab"])
    assert np.all(out[:2] == 0)
    _, height = text_size("ab")
    assert np.any(np.all(out[3 : 3 + height, 1:15] == [0, 0, 0], axis=-1))  # text pixels inside the box
    assert np.all(out[2 : 2 + height, 0:8] == [0, 255, 0], axis=-1).sum() > 20  # filled label background


def test_labels_are_readable_text_in_both_cases() -> None:
    image = np.zeros((40, 80, 3), dtype=np.uint8)
    box = np.array([[2, 25, 75, 39]])
    upper = draw_boxes(image, box, labels=["ABC"])
    lower = draw_boxes(image, box, labels=["abc"])
    assert not np.array_equal(upper, lower)  # lower case is lower case, not a fallback
    assert text_mask("person 0.97").sum() > 20


def test_label_scale() -> None:
    one, two = text_size("12"), text_size("12", scale=2)
    assert two[1] >= 2 * one[1] - 2 and two[0] > one[0]
    image = np.zeros((80, 80, 3), dtype=np.uint8)
    out = draw_boxes(image, np.array([[5, 50, 70, 75]]), thickness=1, labels=["12"], label_scale=2)
    assert np.all(out[: 50 - two[1] - 2] == 0) and np.any(out[50 - two[1] - 2 : 50] != 0)


def test_draw_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="RGB"):
        draw_boxes(np.zeros((4, 4), dtype=np.uint8), np.zeros((0, 4)))
    with pytest.raises(ValueError, match="labels"):
        draw_boxes(np.zeros((4, 4, 3), dtype=np.uint8), np.zeros((1, 4)), labels=[])
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        draw_boxes(np.zeros((4, 4, 3), dtype=np.uint8), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="thickness"):
        draw_boxes(np.zeros((4, 4, 3), dtype=np.uint8), np.zeros((1, 4)), thickness=0)
