"""Sliding-window helpers shared by Convolution and Pooling (numpy and cupy alike).

A window view is an `as_strided` view of a (padded) NC+spatial array with one
axis per output position and one per kernel offset: reading it costs nothing,
and copying it into a column buffer is the im2col step. `kernel_slices`
enumerates, per kernel offset, the strided slice of the padded input that the
offset touches for every output position: adding into those slices is col2im,
a loop over kernel offsets (kh*kw), never over pixels.
"""
import itertools

import numpy as np

LAYOUTS = {1: "NCW", 2: "NCHW", 3: "NCDHW"}
CHANNEL_LAST = {"NWC", "NHWC", "NDHWC"}


def check_layout(op, layout, ndim=None):
    """Only channel-first layouts are implemented; name the alternative clearly."""
    if layout is None:
        return
    if layout in CHANNEL_LAST:
        op.error(f"layout {layout!r} is not supported (raymod implements the channel-first "
                 f"layouts NCW/NCHW/NCDHW); transpose the data to "
                 f"{'NC' + layout[1:-1]!r} instead", ValueError)
    if layout not in LAYOUTS.values():
        op.error(f"layout must be one of {sorted(LAYOUTS.values())}, received {layout!r}",
                 ValueError)
    if ndim is not None and layout != LAYOUTS.get(ndim):
        op.error(f"layout {layout!r} does not match a {ndim}-D kernel: expected "
                 f"{LAYOUTS.get(ndim)!r}", ValueError)


def spatial_tuple(op, name, value, ndim, default):
    """stride/dilate/pad: () means `default` in every dimension, else one value per dim."""
    if value == ():
        return (default,) * ndim
    if len(value) != ndim:
        op.error(f"{name} {value} has {len(value)} values but kernel {op.kernel} has "
                 f"{ndim}", ValueError)
    return tuple(value)


def as_strided(xp, x, shape, strides):
    if xp is np:
        return np.lib.stride_tricks.as_strided(x, shape, strides, writeable=False)
    return xp.lib.stride_tricks.as_strided(x, shape=shape, strides=strides)


def window_view(xp, x, kernel, stride, dilate, out_spatial):
    """Read-only view (N, C, *out_spatial, *kernel) of the padded input x (N, C, *S)."""
    spatial_strides = x.strides[2:]
    shape = tuple(x.shape[:2]) + tuple(out_spatial) + tuple(kernel)
    strides = tuple(x.strides[:2]) \
        + tuple(st * s for st, s in zip(spatial_strides, stride)) \
        + tuple(st * dl for st, dl in zip(spatial_strides, dilate))
    return as_strided(xp, x, shape, strides)


def kernel_slices(kernel, stride, dilate, out_spatial):
    """(offset index, slices into the padded spatial dims) for every kernel offset."""
    for offset in itertools.product(*(range(k) for k in kernel)):
        slices = tuple(slice(o * dl, o * dl + s * (n - 1) + 1, s)
                       for o, dl, s, n in zip(offset, dilate, stride, out_spatial))
        yield offset, slices


def padded_input(xp, ws, key, x, pad_lo, pad_hi, fill):
    """x copied into a scratch buffer with a border of `fill`; x itself when no border."""
    if not any(pad_lo) and not any(pad_hi):
        return x
    shape = tuple(x.shape[:2]) + tuple(s + lo + hi for s, lo, hi
                                       in zip(x.shape[2:], pad_lo, pad_hi))
    buf = ws.scratch(key, shape, x.dtype)
    fill_border(buf, 2, x.shape[2:], pad_lo, fill)
    buf[interior(x.shape, pad_lo)] = x
    return buf


def fill_border(buf, first, spatial, pad_lo, fill):
    """Write `fill` around the interior of `spatial` that starts at pad_lo, in the spatial
    axes first, first + 1, ... of buf (the border only: the interior is overwritten)."""
    index = [slice(None)] * buf.ndim
    for i, (lo, s) in enumerate(zip(pad_lo, spatial)):
        axis = first + i
        index[axis] = slice(0, lo)
        buf[tuple(index)] = fill
        index[axis] = slice(lo + s, None)
        buf[tuple(index)] = fill
        index[axis] = slice(None)


def interior(shape, pad_lo):
    """The slices of a padded buffer that hold the unpadded array of `shape`."""
    return (slice(None), slice(None)) + tuple(slice(lo, lo + s)
                                              for lo, s in zip(pad_lo, shape[2:]))


def grad_buffer(xp, ws, key, dx, pad_lo, pad_hi, zero=True):
    """A zeroed buffer to scatter input gradients into: dx itself when there is no border.

    `zero=False` skips zeroing dx when the caller will write every cell of it.
    """
    if not any(pad_lo) and not any(pad_hi):
        if zero:
            dx.fill(0)
        return dx
    shape = tuple(dx.shape[:2]) + tuple(s + lo + hi for s, lo, hi
                                        in zip(dx.shape[2:], pad_lo, pad_hi))
    buf = ws.scratch(key, shape, dx.dtype)
    buf.fill(0)
    return buf


def finish_grad(xp, buf, dx, pad_lo):
    """Copy the interior of the scatter buffer into dx (no-op when buf is dx)."""
    if buf is not dx:
        xp.copyto(dx, buf[interior(dx.shape, pad_lo)])
