"""Convolution lowerings that skip the batch-wide column matrix: pointwise and depthwise.

Pointwise (1x1 kernel, stride 1, no padding): the input itself is the
column matrix of each sample, (C, P); forward is one batched product
`W (F, C) @ x[n] (C, P)` over the samples (and the groups) written straight
into the (N, F, P) output, with no im2col and no transpose. The weight
gradient sums the samples' products: per sample and summed when the
(F, C) result is smaller than the transposed copies one product over all
columns would need, else through those copies.

Depthwise (num_group == channels == num_filter): every channel has its own
(1, K) filter. The columns are laid out per sample and channel, (N, C, K, P),
so forward is one batched product of each channel's filter with its columns.
Backward rebuilds the columns for the weight gradient (one batched product
and a sum over samples). With stride 1 the input gradient is the same kind of
product over the columns of the padded output gradient with the flipped
filters; strided, each kernel offset adds its share with one strided pass
(a loop over the K offsets, not the pixels).

Only matmul, sum, multiply and basic slicing are used: the code is the same
for numpy and cupy.
"""
from ._window import finish_grad, grad_buffer, kernel_slices, padded_input, window_view

# A 1x1 convolution with fewer output positions than this per sample goes through the
# batch-wide columns instead: products with so few columns each run slower than one
# product over all of them plus two transposing copies.
POINTWISE_MIN_COLUMNS = 64


def _prod(values):
    out = 1
    for v in values:
        out *= int(v)
    return out


def is_pointwise(op, out_spatial):
    return all(k == 1 for k in op.kernel) and all(s == 1 for s in op._stride) \
        and not any(op._pad) and _prod(out_spatial) >= POINTWISE_MIN_COLUMNS


def is_depthwise(op, channels):
    return channels > 1 and op.num_group == channels == op.num_filter


# --------------------------------------------------------------------------- pointwise

def _weight_grad_per_sample(f, c, p):
    """Sum per-sample (f, c) products when those are smaller than the two transposed
    copies, (f + c) * P per sample, that one product over all columns needs."""
    return f * c < (f + c) * p


def _pointwise_views(op, x, w, y):
    """x (N, G, C/G, P), W (1, G, F/G, C/G), y (N, G, F/G, P)."""
    N, C = x.shape[:2]
    G, F = op.num_group, op.num_filter
    P = _prod(y.shape[2:])
    return (x.reshape(N, G, C // G, P), w.reshape(1, G, F // G, C // G),
            y.reshape(N, G, F // G, P))


def pointwise_forward(op, xp, x, w, bias, y):
    x4, w4, y4 = _pointwise_views(op, x, w, y)
    xp.matmul(w4, x4, out=y4)
    if bias is not None:
        y3 = y.reshape(y.shape[0], op.num_filter, -1)
        y3 += bias.reshape(1, op.num_filter, 1)


def pointwise_backward(op, xp, ws, x, w, gy, gx, gw, gb):
    x4, w4, gy4 = _pointwise_views(op, x, w, gy)
    N, G, Cg, P = x4.shape
    Fg = gy4.shape[2]
    if gb is not None:
        xp.sum(gy.reshape(N, G * Fg, P), axis=(0, 2), out=gb.reshape(G * Fg))
    if gw is not None:
        gw3 = gw.reshape(G, Fg, Cg)
        if _weight_grad_per_sample(Fg, Cg, P):   # per-sample products, then their sum
            part = ws.scratch("gw_part", (N, G, Fg, Cg), gw.dtype)
            xp.matmul(gy4, x4.transpose(0, 1, 3, 2), out=part)
            xp.sum(part, axis=0, out=gw3)
        else:                                # one product over all N*P columns
            gyt = ws.scratch("gy_t", (G, Fg, N, P), gy.dtype)
            xt = ws.scratch("x_t", (G, Cg, N, P), x.dtype)
            xp.copyto(gyt, gy4.transpose(1, 2, 0, 3))
            xp.copyto(xt, x4.transpose(1, 2, 0, 3))
            xp.matmul(gyt.reshape(G, Fg, N * P), xt.reshape(G, Cg, N * P).transpose(0, 2, 1),
                      out=gw3)
    if gx is not None:
        xp.matmul(w4.transpose(0, 1, 3, 2), gy4, out=gx.reshape(N, G, Cg, P))


# --------------------------------------------------------------------------- depthwise

def _columns(xp, ws, key, src, kernel, stride, dilate, pad, out_spatial):
    """(N, C, K, P): every sample's and channel's K kernel taps at the P output positions."""
    d, (N, C) = len(kernel), src.shape[:2]
    padded = padded_input(xp, ws, key + "_pad", src, pad, pad, 0)
    win = window_view(xp, padded, kernel, stride, dilate, out_spatial)
    col = ws.scratch(key, (N, C) + tuple(kernel) + tuple(out_spatial), src.dtype)
    xp.copyto(col, win.transpose((0, 1) + tuple(range(2 + d, 2 + 2 * d))
                                 + tuple(range(2, 2 + d))))
    return col.reshape(N, C, _prod(kernel), _prod(out_spatial))


def depthwise_columns(op, xp, ws, x, out_spatial):
    return _columns(xp, ws, "dw_col", x, op.kernel, op._stride, op._dilate, op._pad,
                    out_spatial)


def depthwise_forward(op, xp, ws, x, w, bias, y):
    N, C = x.shape[:2]
    col = depthwise_columns(op, xp, ws, x, y.shape[2:])
    K, P = col.shape[2:]
    xp.matmul(w.reshape(1, C, 1, K), col, out=y.reshape(N, C, 1, P))
    if bias is not None:
        y3 = y.reshape(N, C, P)
        y3 += bias.reshape(1, C, 1)


def depthwise_backward(op, xp, ws, x, w, gy, gx, gw, gb):
    N, C = x.shape[:2]
    out_spatial = gy.shape[2:]
    P = _prod(out_spatial)
    if gb is not None:
        xp.sum(gy.reshape(N, C, P), axis=(0, 2), out=gb.reshape(C))
    if gw is not None:
        col = depthwise_columns(op, xp, ws, x, out_spatial)      # rebuilt, not kept
        K = col.shape[2]
        part = ws.scratch("gw_part", (N, C, 1, K), gw.dtype)
        xp.matmul(gy.reshape(N, C, 1, P), col.transpose(0, 1, 3, 2), out=part)
        xp.sum(part, axis=0, out=gw.reshape(C, 1, K))
    if gx is None:
        return
    extents = [dl * (k - 1) + 1 for k, dl in zip(op.kernel, op._dilate)]
    if all(s == 1 for s in op._stride) and all(p < e for p, e in zip(op._pad, extents)):
        _depthwise_input_grad_gather(op, xp, ws, w, gy, gx, extents)
    else:
        _depthwise_input_grad_scatter(op, xp, ws, w, gy, gx)


def _depthwise_input_grad_gather(op, xp, ws, w, gy, gx, extents):
    """Stride 1: dx is the correlation of gy, padded by extent-1-pad, with the flipped
    filters, i.e. a depthwise forward (gathers, no scattered adds)."""
    N, C = gx.shape[:2]
    pad = tuple(e - 1 - p for e, p in zip(extents, op._pad))
    col = _columns(xp, ws, "dw_gcol", gy, op.kernel, (1,) * len(op.kernel), op._dilate, pad,
                   gx.shape[2:])
    K, P = col.shape[2:]
    flipped = w.reshape(C, K)[:, ::-1].reshape(1, C, 1, K)
    xp.matmul(flipped, col, out=gx.reshape(N, C, 1, P))


def _depthwise_input_grad_scatter(op, xp, ws, w, gy, gx):
    """Strided: each kernel offset adds its share of dx with one strided pass."""
    C = gx.shape[1]
    out_spatial = gy.shape[2:]
    gpad = grad_buffer(xp, ws, "gxpad", gx, op._pad, op._pad)
    tap = ws.scratch("dw_tap", gy.shape, gy.dtype)
    w2 = w.reshape(C, -1)
    bcast = (1, C) + (1,) * len(out_spatial)
    full = (slice(None), slice(None))
    for k, (_, slices) in enumerate(kernel_slices(op.kernel, op._stride, op._dilate,
                                                  out_spatial)):
        xp.multiply(gy, w2[:, k].reshape(bcast), out=tap)
        gpad[full + slices] += tap
    finish_grad(xp, gpad, gx, op._pad)
