"""`rm.image`: decode images as MXNet's `mx.image` does, and MXNet's default augmenter.

Needs OpenCV (``pip install 'raymod[image]'``), MXNet's own codec.
"""
import numpy as np

from .augment import AugmentSpec, augment, to_chw
from .codec import imdecode_bgr, imencode

__all__ = ["imdecode", "imread", "AugmentSpec", "augment", "to_chw", "imencode"]


def imdecode(buf, flag=1, to_rgb=1, out=None):
    """Decode an image (MXNet's `mx.image.imdecode`).

    Parameters
    ----------
    buf : bytes or uint8 array
    flag : int
        1 color, 0 grayscale.
    to_rgb : bool
        Return RGB (MXNet's default) rather than OpenCV's BGR.
    out : NDArray, optional
        Written into when given.

    Returns
    -------
    NDArray
        uint8, H x W x C (C = 3 for color, 1 for grayscale).
    """
    from ..ndarray import NDArray
    if isinstance(buf, str):
        raise TypeError("imdecode takes the encoded bytes; use imread for a file name")
    img = imdecode_bgr(buf, 1 if flag else 0)
    if img.ndim == 2:
        img = img[:, :, None]
    elif to_rgb:
        img = img[:, :, ::-1]
    img = np.ascontiguousarray(img)
    if out is not None:
        out[...] = img
        return out
    return img.view(NDArray)


def imread(filename, flag=1, to_rgb=1, out=None):
    """Read and decode an image file (MXNet's `mx.image.imread`); see `imdecode`."""
    try:
        with open(filename, "rb") as f:
            buf = f.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"imread: no image file {filename!r}") from None
    return imdecode(buf, flag, to_rgb, out)
