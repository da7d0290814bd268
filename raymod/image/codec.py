"""Image encoding and decoding with OpenCV, MXNet's own codec.

OpenCV (the `opencv-python-headless` wheel, ``pip install 'raymod[image]'``)
is what MXNet's `ImageRecordIter`, `mx.image` and `im2rec.py` use: the same
JPEG decoder (libjpeg-turbo), the same resize kernels, BGR channel order.
Using it here is what lets raymod's batches equal MXNet's pixel for pixel;
its calls also release the GIL, so decoding runs in parallel in threads.
"""
import numpy as np

_INSTALL_HINT = ("images need OpenCV: pip install 'raymod[image]' "
                 "(or pip install opencv-python-headless)")
_cv2 = None


def cv2():
    """The `cv2` module, imported on first use with a clear error when missing."""
    global _cv2
    if _cv2 is None:
        try:
            import cv2 as module
        except ImportError as err:
            raise ImportError(_INSTALL_HINT) from err
        _cv2 = module
    return _cv2


def imdecode_bgr(buf, flag=1, what="the image"):
    """Decode encoded image bytes to a uint8 array in OpenCV's layout.

    Parameters
    ----------
    buf : bytes or uint8 array
    flag : int
        -1 as stored (alpha kept), 0 grayscale (H x W), 1 color (H x W x 3, BGR).
    what : str
        Names the image in the error raised when it does not decode.
    """
    cv = cv2()
    if flag not in (-1, 0, 1):
        raise ValueError(f"imdecode flag must be -1, 0 or 1, received {flag!r}")
    arr = np.frombuffer(buf, dtype=np.uint8) if not isinstance(buf, np.ndarray) else buf
    img = cv.imdecode(arr, flag) if arr.size else None
    if img is None:
        head = bytes(arr[:8]).hex()
        raise ValueError(f"could not decode {what}: {arr.size} bytes starting {head!r} are "
                         "not an image OpenCV reads (JPEG, PNG, ...)")
    return img


_FORMATS = {".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png"}


def imencode(img, img_fmt=".jpg", quality=95):
    """Encode a uint8 image (OpenCV's BGR order) to JPEG or PNG bytes.

    Parameters
    ----------
    img : numpy.ndarray
        uint8, H x W or H x W x C.
    img_fmt : {'.jpg', '.jpeg', '.png'}
    quality : int
        JPEG quality 1-100, or PNG compression level 0-9 (MXNet's pack_img);
        values outside are clamped, as OpenCV does (so im2rec's default 95
        with '.png' means level 9).
    """
    cv = cv2()
    kind = _FORMATS.get(str(img_fmt).lower())
    if kind is None:
        raise ValueError(f"img_fmt must be one of {sorted(_FORMATS)}, received {img_fmt!r}")
    img = np.asarray(img)
    if img.dtype != np.uint8 or img.ndim not in (2, 3):
        raise ValueError(f"imencode takes a uint8 H x W or H x W x C image, received dtype "
                         f"{img.dtype} shape {img.shape}")
    if kind == "jpeg":
        params = [cv.IMWRITE_JPEG_QUALITY, min(max(int(quality), 0), 100)]
    else:
        params = [cv.IMWRITE_PNG_COMPRESSION, min(max(int(quality), 0), 9)]
    ok, out = cv.imencode(img_fmt, img, params)
    if not ok:
        raise ValueError(f"OpenCV could not encode a {img.shape} image as {img_fmt}")
    return out.tobytes()
