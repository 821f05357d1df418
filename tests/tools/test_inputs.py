"""Input sets: seeded distributions, .npy/.npz files and picture folders, each checked against the model."""

import numpy as np
import pytest
from PIL import Image

from cnncompile.errors import CnnCompileError, ModelError
from cnncompile.ir.types import DType
from cnncompile.tools.images import image_sets, parse_resize
from cnncompile.tools.inputs import (
    Distribution, DistributionKind, InputOptions, InputSpec, Normalization, conform, gather, random_sets, read_npz,
)

IMAGE = InputSpec("data", (1, 3, 4, 6), DType.FLOAT32)


def test_set_i_is_the_same_whatever_the_count():
    three = random_sets([IMAGE], seed=5, count=3)
    one = random_sets([IMAGE], seed=5, count=1)
    np.testing.assert_array_equal(three[0]["data"], one[0]["data"])
    assert not np.array_equal(three[0]["data"], three[1]["data"]) and three[2]["data"].dtype == np.float32


def test_distributions_are_drawn_as_stated():
    (drawn,) = random_sets([InputSpec("x", (200, 200), DType.FLOAT64)], Distribution.parse("uniform:-2,3"))
    assert -2 <= drawn["x"].min() and drawn["x"].max() < 3 and abs(drawn["x"].mean() - 0.5) < 0.05
    (normal,) = random_sets([InputSpec("x", (200, 200), DType.FLOAT64)], Distribution.parse("normal:1,2"))
    assert abs(normal["x"].mean() - 1) < 0.05 and abs(normal["x"].std() - 2) < 0.05
    (image,) = random_sets([IMAGE], Distribution(DistributionKind.IMAGE), Normalization((128.0,), (2.0,)))
    pixels = image["data"] * 2 + 128  # back to 0..255 integers
    np.testing.assert_allclose(pixels, np.round(pixels), atol=1e-4)
    assert pixels.min() >= 0 and pixels.max() <= 255


@pytest.mark.parametrize("text", ["cauchy", "normal:0", "normal:0,-1", "uniform:2,1", "image:1,2", "normal:a,b"])
def test_a_bad_distribution_says_what_to_write(text):
    with pytest.raises(CnnCompileError, match="--distribution"):
        Distribution.parse(text)


def test_conform_names_the_input_and_what_it_takes():
    with pytest.raises(ModelError, match=r"input 'data' expects \[1, 3, 4, 6\]"):
        conform([IMAGE], {"data": np.zeros((1, 3, 4, 4))}, "--input")
    with pytest.raises(ModelError, match="gives input\\(s\\) 'img'"):
        conform([IMAGE], {"img": np.zeros(IMAGE.shape)}, "--input")
    with pytest.raises(ModelError, match="does not convert"):
        conform([InputSpec("i", (2,), DType.INT64)], {"i": np.zeros(2)}, "--input")
    assert conform([IMAGE], {"data": np.zeros(IMAGE.shape)}, "x")["data"].dtype == np.float32


def test_an_npz_stacks_sets_on_a_leading_axis(tmp_path):
    stacked = np.arange(2 * 72, dtype=np.float32).reshape(2, *IMAGE.shape)
    np.savez(tmp_path / "sets.npz", data=stacked)
    sets = gather([IMAGE], InputOptions(npz=str(tmp_path / "sets.npz")))
    assert len(sets) == 2
    np.testing.assert_array_equal(sets[1]["data"], stacked[1])
    np.savez(tmp_path / "one.npz", data=stacked[0])
    assert len(read_npz(tmp_path / "one.npz", [IMAGE])) == 1


def test_one_source_at_a_time():
    with pytest.raises(CnnCompileError, match="choose one source"):
        gather([IMAGE], InputOptions(arrays=("data=x.npy",), npz="y.npz"))


def test_pictures_are_resized_laid_out_and_normalized_as_stated(tmp_path):
    """A solid picture of (R, G, B) = (255, 0, 51) at 0..1 with mean 0.5 and std 0.25 per channel gives
    (1 - 0.5) / 0.25 = 2, (0 - 0.5) / 0.25 = -2 and (0.2 - 0.5) / 0.25 = -1.2 everywhere."""
    Image.new("RGB", (9, 7), (255, 0, 51)).save(tmp_path / "a.png")
    Image.new("RGB", (9, 7), (0, 0, 0)).save(tmp_path / "b.png")
    (tmp_path / "notes.txt").write_text("not a picture")
    sets = image_sets(tmp_path, [IMAGE], Normalization((0.5,) * 3, (0.25,) * 3, 1.0), parse_resize("4x6"))
    assert len(sets) == 2 and sets[0]["data"].shape == IMAGE.shape and sets[0]["data"].dtype == np.float32
    for channel, want in enumerate((2.0, -2.0, -1.2)):
        np.testing.assert_allclose(sets[0]["data"][0, channel], want, rtol=1e-6)
    np.testing.assert_allclose(sets[1]["data"], -2.0, rtol=1e-6)


def test_a_picture_of_the_wrong_size_asks_for_resize(tmp_path):
    Image.new("RGB", (9, 7)).save(tmp_path / "a.png")
    with pytest.raises(ModelError, match="add --resize 4x6"):
        image_sets(tmp_path, [IMAGE])
    with pytest.raises(CnnCompileError, match="HxW"):
        parse_resize("4by6")
