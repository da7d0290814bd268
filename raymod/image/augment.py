"""MXNet's default image augmenter (`aug_default` of ImageRecordIter), one image at a time.

`AugmentSpec` holds the settings (MXNet's argument names and defaults);
`augment` is MXNet's `DefaultImageAugmenter::Process` (resize the shorter
edge, random scale / rotation / shear / aspect by one affine warp, pad,
crop), and `to_chw` is the parser's `ProcessImage` (BGR to RGB, mirror,
mean / std / scale). Random choices come from the `numpy.random.Generator`
passed in, so one seed per sample makes a sample's augmentation
reproducible wherever it runs.

The deterministic steps match MXNet 1.9.1 exactly (the same OpenCV calls
with the same arguments, float32 arithmetic in the same order); the random
ones draw from the same distributions, not the same random streams.
"""
import math
from dataclasses import dataclass, fields

import numpy as np

from .codec import cv2

# MXNet's inter_method: 0 nearest, 1 bilinear, 2 cubic, 3 area, 4 lanczos4, 9 auto, 10 random
_INTER_METHODS = (0, 1, 2, 3, 4, 9, 10)
_CHANNEL_ORDER = {1: [0], 3: [2, 1, 0], 4: [2, 1, 0, 3]}   # OpenCV's BGR(A) -> RGB(A)
DECODE_FLAG = {1: 0, 3: 1, 4: -1}                           # cv2.imdecode flag per channel count
# Without randomness every draw has an empty range; this stands in for the missing seed.
_FIXED_RNG = np.random.default_rng(0)


@dataclass(frozen=True)
class AugmentSpec:
    """What ImageRecordIter does to each image; MXNet's names and defaults.

    Parameters
    ----------
    data_shape : tuple of int
        (channels, height, width) of one output image; channels 1, 3 or 4.
    resize : int
        Resize the shorter edge to this before the other steps (-1: keep).
    rand_crop : bool
        Crop at a random place instead of the centre.
    rand_mirror, mirror : bool
        Flip horizontally with probability 0.5 / always.
    max_rotate_angle, rotate : int
        Rotate by a random whole degree in [-v, v]; `rotate` > 0 fixes the angle.
    max_shear_ratio, max_aspect_ratio, min_aspect_ratio : float
    max_random_scale, min_random_scale : float
        Scale the image by s uniform in [min, max] (one affine warp).
    max_img_size, min_img_size : float
        Bounds on the warped image's width and height.
    max_crop_size, min_crop_size : int
        Crop a random square size in [min, max], resized to data_shape (-1: off).
    pad : int
        Pixels of `fill_value` added on every side before cropping.
    fill_value : int
    inter_method : int
        0 nearest, 1 bilinear, 2 cubic, 3 area, 4 lanczos4, 9 auto, 10 random.
    mean, std : tuple of 4 float
        Per channel (R, G, B, A): out = (pixel - mean) * scale / std.
    scale : float
    max_random_contrast, max_random_illumination : float
    dtype : {'float32', 'uint8'}
        'uint8' keeps raw pixels (no mean, std or scale), as MXNet's.
    """

    data_shape: tuple
    resize: int = -1
    rand_crop: bool = False
    rand_mirror: bool = False
    mirror: bool = False
    max_rotate_angle: int = 0
    rotate: int = -1
    max_shear_ratio: float = 0.0
    max_aspect_ratio: float = 0.0
    min_aspect_ratio: float = None
    max_random_scale: float = 1.0
    min_random_scale: float = 1.0
    max_img_size: float = 1e10
    min_img_size: float = 0.0
    max_crop_size: int = -1
    min_crop_size: int = -1
    pad: int = 0
    fill_value: int = 255
    inter_method: int = 1
    mean: tuple = (0.0, 0.0, 0.0, 0.0)
    std: tuple = (1.0, 1.0, 1.0, 1.0)
    scale: float = 1.0
    max_random_contrast: float = 0.0
    max_random_illumination: float = 0.0
    dtype: str = "float32"

    def __post_init__(self):
        shape = self.data_shape
        if (not isinstance(shape, (tuple, list)) or len(shape) != 3
                or not all(isinstance(v, (int, np.integer)) and v > 0 for v in shape)):
            raise ValueError(f"data_shape must be (channels, height, width) of positive ints, "
                             f"received {shape!r}")
        if shape[0] not in DECODE_FLAG:
            raise ValueError(f"data_shape must have 1, 3 or 4 channels, received {shape!r}")
        object.__setattr__(self, "data_shape", tuple(int(v) for v in shape))
        if self.inter_method not in _INTER_METHODS:
            raise ValueError(f"inter_method must be one of {_INTER_METHODS}, received "
                             f"{self.inter_method!r}")
        if self.dtype not in ("float32", "uint8"):
            raise ValueError(f"dtype must be 'float32' or 'uint8', received {self.dtype!r}")
        if self.min_random_scale > self.max_random_scale:
            raise ValueError(f"min_random_scale ({self.min_random_scale}) must not exceed "
                             f"max_random_scale ({self.max_random_scale})")
        if self.pad < 0:
            raise ValueError(f"pad must be >= 0, received {self.pad}")
        if any(s == 0 for s in self.std):
            raise ValueError(f"std_r/g/b/a must be non-zero, received {self.std}")

    @property
    def is_random(self):
        """Whether any step draws random numbers (the samples then need seeds)."""
        return bool(self.rand_crop or self.rand_mirror or self.max_rotate_angle > 0
                    or self.max_shear_ratio > 0 or self.max_aspect_ratio != 0
                    or self.max_random_scale != self.min_random_scale
                    or self.max_random_contrast or self.max_random_illumination
                    or self.inter_method == 10
                    or self.min_crop_size != self.max_crop_size)

    @property
    def warps(self):
        """MXNet's condition for the affine step (any of its settings off its default)."""
        return (self.max_rotate_angle > 0 or self.max_shear_ratio > 0 or self.rotate > 0
                or self.max_random_scale != 1.0 or self.min_random_scale != 1.0
                or self.max_aspect_ratio != 0 or self.max_img_size != 1e10
                or self.min_img_size != 0)

    @classmethod
    def names(cls):
        return [f.name for f in fields(cls)]


def _inter(spec, old_w, old_h, new_w, new_h, rng):
    if spec.inter_method == 9:   # cubic to enlarge, area to shrink, bilinear otherwise
        if new_w > old_w and new_h > old_h:
            return 2
        if new_w < old_w and new_h < old_h:
            return 3
        return 1
    if spec.inter_method == 10:
        return int(rng.integers(0, 4, endpoint=True))
    return spec.inter_method


def _resize_short(img, spec, rng):
    rows, cols = img.shape[:2]
    if rows > cols:   # integer arithmetic as MXNet's: new long edge = resize * long / short
        new_h, new_w = spec.resize * rows // cols, spec.resize
    else:
        new_h, new_w = spec.resize, spec.resize * cols // rows
    method = _inter(spec, cols, rows, new_w, new_h, rng)
    return cv2().resize(img, (new_w, new_h), interpolation=method)


def _warp(img, spec, rng):
    f32 = np.float32
    rows, cols = img.shape[:2]
    shear = f32(rng.random() * spec.max_shear_ratio * 2 - spec.max_shear_ratio)
    angle = int(rng.integers(-spec.max_rotate_angle, spec.max_rotate_angle, endpoint=True))
    if spec.rotate > 0:
        angle = spec.rotate
    a, b = f32(math.cos(angle / 180.0 * math.pi)), f32(math.sin(angle / 180.0 * math.pi))
    scale = f32(rng.random() * (spec.max_random_scale - spec.min_random_scale)
                + spec.min_random_scale)
    if spec.min_aspect_ratio is not None:
        ratio = f32(rng.uniform(spec.min_aspect_ratio, spec.max_aspect_ratio))
    else:
        ratio = f32(rng.random() * spec.max_aspect_ratio * 2 - spec.max_aspect_ratio + 1)
    hs = f32(2) * scale / (f32(1) + ratio)
    ws = ratio * hs
    new_w = max(f32(spec.min_img_size), min(f32(spec.max_img_size), scale * f32(cols)))
    new_h = max(f32(spec.min_img_size), min(f32(spec.max_img_size), scale * f32(rows)))
    m = np.empty((2, 3), np.float32)
    m[0, 0] = hs * a - shear * b * ws
    m[1, 0] = -b * ws
    m[0, 1] = hs * b + shear * a * ws
    m[1, 1] = a * ws
    m[0, 2] = (new_w - (m[0, 0] * cols + m[0, 1] * rows)) / 2
    m[1, 2] = (new_h - (m[1, 0] * cols + m[1, 1] * rows)) / 2
    method = _inter(spec, cols, rows, new_w, new_h, rng)
    cv = cv2()
    fill = (spec.fill_value,) * 4
    return cv.warpAffine(img, m, (int(new_w), int(new_h)), flags=method,
                         borderMode=cv.BORDER_CONSTANT, borderValue=fill)


def _crop(img, spec, rng, what):
    _, height, width = spec.data_shape
    rows, cols = img.shape[:2]
    if spec.max_crop_size != -1 or spec.min_crop_size != -1:
        if not (cols >= spec.max_crop_size and rows >= spec.max_crop_size
                and spec.max_crop_size >= spec.min_crop_size):
            raise ValueError(f"{what}: image of {cols}x{rows} (after resize/pad) is smaller "
                             f"than max_crop_size={spec.max_crop_size}, or min_crop_size="
                             f"{spec.min_crop_size} exceeds it")
        size = int(rng.integers(spec.min_crop_size, spec.max_crop_size, endpoint=True))
        y, x = _crop_origin(rows - size, cols - size, spec.rand_crop, rng)
        method = _inter(spec, size, size, width, height, rng)
        return cv2().resize(img[y:y + size, x:x + size], (width, height), interpolation=method)
    if rows < height or cols < width:
        raise ValueError(f"{what}: image of {cols}x{rows} (width x height, after resize/pad) "
                         f"is smaller than data_shape {spec.data_shape}; set resize= or a "
                         "smaller data_shape")
    y, x = _crop_origin(rows - height, cols - width, spec.rand_crop, rng)
    return img[y:y + height, x:x + width]


def _crop_origin(y, x, random, rng):
    if random:
        return int(rng.integers(0, y, endpoint=True)), int(rng.integers(0, x, endpoint=True))
    return y // 2, x // 2


def augment(img, spec, rng=None, what="image"):
    """MXNet's default augmenter on one decoded image (OpenCV layout, uint8).

    Parameters
    ----------
    img : numpy.ndarray
        H x W or H x W x C, uint8, BGR(A) as OpenCV decodes.
    spec : AugmentSpec
    rng : numpy.random.Generator, optional
        Needed when `spec.is_random`.
    what : str
        Names the image in errors.

    Returns
    -------
    numpy.ndarray
        data_shape's height x width (x C), still BGR.
    """
    rng = _FIXED_RNG if rng is None else rng
    if spec.resize != -1:
        img = _resize_short(img, spec, rng)
    if spec.warps:
        img = _warp(img, spec, rng)
    if spec.pad > 0:
        cv = cv2()
        img = cv.copyMakeBorder(img, spec.pad, spec.pad, spec.pad, spec.pad,
                                cv.BORDER_CONSTANT, value=(spec.fill_value,) * 4)
    return _crop(img, spec, rng, what)


def to_chw(img, spec, rng=None, out=None):
    """MXNet's ProcessImage: RGB channel order, mirror, (pixel - mean) * scale / std.

    Parameters
    ----------
    img : numpy.ndarray
        The augmented image, H x W (x C), BGR(A).
    spec : AugmentSpec
    rng : numpy.random.Generator, optional
    out : numpy.ndarray, optional
        A C x H x W array of spec.dtype to write into.
    """
    rng = _FIXED_RNG if rng is None else rng
    channels = spec.data_shape[0]
    if img.ndim == 2:
        img = img[:, :, None]
    if img.shape[2] != channels:
        raise ValueError(f"image has {img.shape[2]} channels, data_shape {spec.data_shape} "
                         f"expects {channels}")
    src = img[:, :, _CHANNEL_ORDER[channels]].transpose(2, 0, 1)
    if (spec.rand_mirror and rng.random() < 0.5) or spec.mirror:
        src = src[:, :, ::-1]
    if out is None:
        out = np.empty(src.shape, dtype=spec.dtype)
    if spec.dtype == "uint8":
        out[...] = src
        return out
    f32 = np.float32
    contrast, illumination = f32(spec.scale), f32(0)
    if spec.max_random_contrast:
        contrast = f32(rng.random() * spec.max_random_contrast * 2
                       - spec.max_random_contrast + 1) * f32(spec.scale)
    if spec.max_random_illumination:
        illumination = f32(rng.random() * spec.max_random_illumination * 2
                           - spec.max_random_illumination) * f32(spec.scale)
    order = [0, 1, 2, 3][:channels]   # mean/std are given as R, G, B, A
    mean = np.array([spec.mean[k] for k in order], f32).reshape(-1, 1, 1)
    std = np.array([spec.std[k] for k in order], f32).reshape(-1, 1, 1)
    np.subtract(src, mean, out=out, dtype=f32)
    np.multiply(out, contrast / std, out=out)
    if illumination:
        np.add(out, illumination / std, out=out)
    return out
