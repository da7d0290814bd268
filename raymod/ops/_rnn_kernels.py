"""The recurrences of the fused `RNN` operator: one layer, one direction, per mode.

The operator has already written every time step's input projection (one
GEMM for the whole sequence, bias included) into the gates buffer `G`
(T, N, gates*H). A kernel's forward adds `h_prev @ Wh^T` step by step and
applies the gate math in place, so `G` ends up holding the activated gates
that backward needs. Sigmoid is `0.5 * tanh(x / 2) + 0.5`: the operator
pre-scales the sigmoid gates' weight rows and bias by 1/2, so one `tanh`
over the whole gate row serves the sigmoid and the tanh gates alike.

Backward first turns the saved activations into each gate's local
derivative for all steps at once (a few large passes), stored where the
gate gradients go (`dA`); the loop over time then only multiplies them by
the incoming gradients and runs the recurrent GEMM. Weight gradients are
single GEMMs over all steps, done by the caller. Everything is written
against `xp` with `out=` buffers from the node's Workspace.
"""


class Direction:
    """One layer and direction: views (T, N, ...) into the operator's buffers.

    G: gates, pre-activation in, activations out (T, N, gates*H).
    out: the hidden states written by forward (T, N, H); the layer's output.
    h0, c0: initial states (N, H); c0 is None except for LSTM.
    C, TC: LSTM cell states and tanh(C) (T, N, H). R: GRU's recurrent
    projection `h_prev @ Wh^T + bh` (T, N, 3H), contiguous per step.
    """

    __slots__ = ("key", "G", "out", "h0", "c0", "reverse", "C", "TC", "R")

    def __init__(self, key, G, out, h0, c0, reverse, C=None, TC=None, R=None):
        self.key, self.G, self.out, self.h0, self.c0 = key, G, out, h0, c0
        self.reverse, self.C, self.TC, self.R = reverse, C, TC, R

    @property
    def steps(self):
        """Time steps in the order forward visits them."""
        T = self.G.shape[0]
        return range(T - 1, -1, -1) if self.reverse else range(T)

    @property
    def steps_back(self):
        """Time steps in the order backward visits them (forward's, reversed)."""
        T = self.G.shape[0]
        return range(T) if self.reverse else range(T - 1, -1, -1)

    def shifted(self):
        """(steps that have a predecessor in the sequence, those predecessors, first step)."""
        T = self.G.shape[0]
        if self.reverse:
            return slice(0, T - 1), slice(1, T), T - 1
        return slice(1, T), slice(0, T - 1), 0


def times_prev(xp, dst, seq, first, dirn):
    """dst (T, N, H) *= the previous step's value of seq, `first` at the first step."""
    cur, prev, t0 = dirn.shifted()
    dst[cur] *= seq[prev]
    dst[t0] *= first


def sigmoid_from_half_tanh(block):
    """In place: tanh(x/2) -> sigmoid(x)."""
    block *= 0.5
    block += 0.5


def one_minus(xp, a, out):
    xp.subtract(1, a, out=out)
    return out


class LSTMKernel:
    """Gates i, f, g (cell input), o, MXNet's order; states h and c."""

    num_gates = 4
    sigmoid_gates = (0, 1, 3)
    has_cell = True

    def forward(self, xp, ws, dirn, WhT):
        T, N, GH = dirn.G.shape
        H = GH // 4
        rec = ws.scratch("rec", (N, GH), dirn.G.dtype)
        tmp = ws.scratch("tmp", (N, H), dirn.G.dtype)
        h, c = dirn.h0, dirn.c0
        for t in dirn.steps:
            g = dirn.G[t]
            xp.dot(h, WhT, out=rec)
            g += rec
            xp.tanh(g, out=g)
            sigmoid_from_half_tanh(g[:, :2 * H])
            sigmoid_from_half_tanh(g[:, 3 * H:])
            c_new = dirn.C[t]
            xp.multiply(g[:, H:2 * H], c, out=c_new)
            xp.multiply(g[:, :H], g[:, 2 * H:3 * H], out=tmp)
            c_new += tmp
            xp.tanh(c_new, out=dirn.TC[t])
            xp.multiply(g[:, 3 * H:], dirn.TC[t], out=dirn.out[t])
            h, c = dirn.out[t], c_new

    def backward(self, xp, ws, dirn, dA, Wh, dout, dhT, dcT, dh0, dc0):
        """Fill dA (T, N, 4H) with the pre-activation gradients; write dh0, dc0."""
        T, N, GH = dirn.G.shape
        H = GH // 4
        dt = dirn.G.dtype
        G = dirn.G
        i, f, g, o = (G[..., k * H:(k + 1) * H] for k in range(4))
        Ki, Kf, Kg, Ko = (dA[..., k * H:(k + 1) * H] for k in range(4))
        # local derivatives of all steps at once
        one_minus(xp, i, Ki)
        Ki *= i
        Ki *= g                                  # dL/da_i = dc * g * i(1-i)
        one_minus(xp, f, Kf)
        Kf *= f
        times_prev(xp, Kf, dirn.C, dirn.c0, dirn)   # dc * c_prev * f(1-f)
        xp.multiply(g, g, out=Kg)
        one_minus(xp, Kg, Kg)
        Kg *= i                                  # dc * i * (1-g^2)
        one_minus(xp, o, Ko)
        Ko *= o
        Ko *= dirn.TC                            # dh * tanh(c) * o(1-o)
        K1 = ws.scratch("k1", (T, N, H), dt)      # dc += dh * o * (1 - tanh(c)^2)
        xp.multiply(dirn.TC, dirn.TC, out=K1)
        one_minus(xp, K1, K1)
        K1 *= o
        rec, dh, dc, dc_next = (ws.scratch(k, (N, H), dt) for k in ("rec", "dh", "dc", "dcn"))
        _start(xp, rec, dhT)
        _start(xp, dc_next, dcT)
        for t in dirn.steps_back:
            xp.add(dout[t], rec, out=dh)
            xp.multiply(dh, K1[t], out=dc)
            dc += dc_next
            a = dA[t]
            a3 = a[:, :3 * H].reshape(N, 3, H)
            a3 *= dc.reshape(N, 1, H)
            a[:, 3 * H:] *= dh
            xp.dot(a, Wh, out=rec)
            xp.multiply(dc, f[t], out=dc_next)
        _finish(xp, dh0, rec)
        _finish(xp, dc0, dc_next)


class GRUKernel:
    """cuDNN's GRU (MXNet's): gates r, z, n; n = tanh(x_n + r * (h Wh_n + bh_n))."""

    num_gates = 3
    sigmoid_gates = (0, 1)
    has_cell = False

    def forward(self, xp, ws, dirn, WhT, bh_n):
        T, N, GH = dirn.G.shape
        H = GH // 3
        tmp = ws.scratch("tmp", (N, H), dirn.G.dtype)
        h = dirn.h0
        for t in dirn.steps:
            g, r = dirn.G[t], dirn.R[t]
            xp.dot(h, WhT, out=r)
            rz = g[:, :2 * H]
            rz += r[:, :2 * H]
            xp.tanh(rz, out=rz)
            sigmoid_from_half_tanh(rz)
            rn = r[:, 2 * H:]
            rn += bh_n
            n = g[:, 2 * H:]
            xp.multiply(g[:, :H], rn, out=tmp)
            n += tmp
            xp.tanh(n, out=n)
            # h = (1 - z) * n + z * h_prev = n + z * (h_prev - n)
            xp.subtract(h, n, out=tmp)
            tmp *= g[:, H:2 * H]
            xp.add(n, tmp, out=dirn.out[t])
            h = dirn.out[t]

    def backward(self, xp, ws, dirn, dA, dR, Wh, dout, dhT, dh0):
        """Fill dA (gradients of the input projection) and dR (of the recurrent one)."""
        T, N, GH = dirn.G.shape
        H = GH // 3
        dt = dirn.G.dtype
        G = dirn.G
        r, z, n = (G[..., k * H:(k + 1) * H] for k in range(3))
        Kr, Kz, Kn = (dR[..., :H], dR[..., H:2 * H], dA[..., 2 * H:])
        one_minus(xp, z, Kn)                       # dan = dh * (1-z)(1-n^2)
        tmp = ws.scratch("k1", (T, N, H), dt)
        xp.multiply(n, n, out=tmp)
        one_minus(xp, tmp, tmp)
        Kn *= tmp
        one_minus(xp, z, Kz)                       # daz = dh * z(1-z)(h_prev - n)
        Kz *= z
        xp.negative(n, out=tmp)
        cur, prev, t0 = dirn.shifted()
        tmp[cur] += dirn.out[prev]
        tmp[t0] += dirn.h0
        Kz *= tmp
        one_minus(xp, r, Kr)                       # dar = dan * r(1-r) * rn
        Kr *= r
        Kr *= dirn.R[..., 2 * H:]
        rec, dh, hz = (ws.scratch(k, (N, H), dt) for k in ("rec", "dh", "hz"))
        _start(xp, rec, dhT)
        for t in dirn.steps_back:
            xp.add(dout[t], rec, out=dh)
            dan = dA[t, :, 2 * H:]
            dan *= dh
            d = dR[t]
            d[:, H:2 * H] *= dh
            d[:, :H] *= dan
            xp.multiply(dan, r[t], out=d[:, 2 * H:])
            xp.dot(d, Wh, out=rec)
            xp.multiply(dh, z[t], out=hz)
            rec += hz
        xp.copyto(dA[..., :2 * H], dR[..., :2 * H])
        _finish(xp, dh0, rec)


class VanillaKernel:
    """h = act(x Wx^T + bx + h_prev Wh^T + bh), act relu or tanh."""

    num_gates = 1
    sigmoid_gates = ()
    has_cell = False

    def __init__(self, act):
        self.act = act

    def forward(self, xp, ws, dirn, WhT):
        T, N, H = dirn.G.shape
        rec = ws.scratch("rec", (N, H), dirn.G.dtype)
        h = dirn.h0
        for t in dirn.steps:
            g = dirn.G[t]
            xp.dot(h, WhT, out=rec)
            g += rec
            if self.act == "tanh":
                xp.tanh(g, out=g)
            else:
                xp.maximum(g, 0, out=g)
            if dirn.out is not dirn.G:
                xp.copyto(dirn.out[t], g)
            h = dirn.out[t]

    def backward(self, xp, ws, dirn, dA, Wh, dout, dhT, dh0):
        T, N, H = dirn.G.shape
        if self.act == "tanh":
            xp.multiply(dirn.G, dirn.G, out=dA)
            one_minus(xp, dA, dA)
        else:
            xp.greater(dirn.G, 0, out=dA)
        rec, dh = (ws.scratch(k, (N, H), dirn.G.dtype) for k in ("rec", "dh"))
        _start(xp, rec, dhT)
        for t in dirn.steps_back:
            xp.add(dout[t], rec, out=dh)
            dA[t] *= dh
            xp.dot(dA[t], Wh, out=rec)
        _finish(xp, dh0, rec)


def _start(xp, buf, value):
    """A recurrence's incoming gradient: the state output's head gradient, else 0."""
    if value is None:
        buf.fill(0)
    else:
        xp.copyto(buf, value)


def _finish(xp, dst, value):
    if dst is not None:
        xp.copyto(dst, value)


def make_kernel(mode):
    if mode == "lstm":
        return LSTMKernel()
    if mode == "gru":
        return GRUKernel()
    return VanillaKernel("relu" if mode == "rnn_relu" else "tanh")
