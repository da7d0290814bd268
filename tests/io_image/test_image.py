"""rm.image: MXNet's imdecode/imread, and the augmenter steps no MXNet fixture covers."""
import cv2
import numpy as np
import pytest

import raymod as rm
from raymod.image import AugmentSpec, augment, to_chw

from .conftest import MF, fixture


def test_imdecode_and_imread_give_rgb_like_mxnet():
    path = fixture("im2rec_src", "cat", "cat0.png")
    bgr = cv2.imread(path)
    img = rm.image.imread(path)
    assert isinstance(img, rm.nd.NDArray) and img.dtype == np.uint8
    np.testing.assert_array_equal(img, bgr[:, :, ::-1])
    np.testing.assert_array_equal(rm.image.imdecode(open(path, "rb").read(), to_rgb=0), bgr)
    gray = rm.image.imdecode(open(path, "rb").read(), flag=0)
    assert gray.shape == bgr.shape[:2] + (1,)
    with pytest.raises(FileNotFoundError, match="no image file"):
        rm.image.imread("/nonexistent.png")
    with pytest.raises(ValueError, match="could not decode"):
        rm.image.imdecode(b"not an image")


def test_crop_size_range_resizes_the_centre_square():
    img = MF.source_image(3)                      # 15 x 20
    spec = AugmentSpec(data_shape=(3, 8, 8), max_crop_size=12, min_crop_size=12)
    want = cv2.resize(img[1:13, 4:16], (8, 8), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(augment(img, spec), want)


def test_fixed_rotation_keeps_the_size_and_fills_the_corners():
    img = np.full((20, 20, 3), 100, np.uint8)
    spec = AugmentSpec(data_shape=(3, 20, 20), rotate=45, fill_value=7)
    out = augment(img, spec)
    assert out.shape == (20, 20, 3)
    assert (out[0, 0] == 7).all() and (out[10, 10] == 100).all()


def test_to_chw_normalises_in_rgb_order_with_mirror():
    img = np.zeros((2, 3, 3), np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = 10, 20, 30          # B, G, R
    img[0, 0] = (1, 2, 3)
    spec = AugmentSpec(data_shape=(3, 2, 3), mean=(30, 20, 10, 0), std=(1, 2, 4, 1),
                       scale=2.0, mirror=True)
    out = to_chw(img, spec)
    assert out.dtype == np.float32 and out.shape == (3, 2, 3)
    np.testing.assert_allclose(out[:, 1, 0], [0, 0, 0])
    np.testing.assert_allclose(out[:, 0, 2], [(3 - 30) * 2, (2 - 20) * 1, (1 - 10) * 0.5])


def test_spec_validation():
    with pytest.raises(ValueError, match="min_random_scale"):
        AugmentSpec(data_shape=(3, 4, 4), min_random_scale=2.0)
    with pytest.raises(ValueError, match="std"):
        AugmentSpec(data_shape=(3, 4, 4), std=(0, 1, 1, 1))
    assert not AugmentSpec(data_shape=(3, 4, 4), resize=8, mirror=True).is_random
    assert AugmentSpec(data_shape=(3, 4, 4), rand_crop=True).is_random
