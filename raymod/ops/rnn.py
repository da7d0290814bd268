"""The fused `RNN` operator (MXNet's `sym.RNN`): LSTM, GRU and vanilla RNN layers.

`parameters` is one flat vector in MXNet's (and cuDNN's) layout: for every
layer and then every direction, the input weights `Wx` (gates*H, input)
followed by the recurrent weights `Wh` (gates*H, H); after all weights, for
every layer and direction, the input bias `bx` then the recurrent bias `bh`
(gates*H each). Gates are stacked along the rows in MXNet's order: i, f, g, o
for LSTM, r, z, n for GRU. Bidirectional layers concatenate the forward and
backward outputs on the feature axis; states are (layers*directions, N, H).

Per layer, the input projection of every time step and both directions is
one GEMM into a gates buffer (T, N, directions, gates*H); the recurrence in
`_rnn_kernels` adds one small GEMM per step and fuses the gate math in
place. Backward computes the gate gradients step by step, then every weight
gradient and the input gradient as single GEMMs over all steps. Buffers
live in the node's Workspace and are reused from step to step.
"""
import numpy as np

from ._rnn_kernels import Direction, make_kernel
from .base import Operator, Param, register
from .dropout import FALLBACK_SEED, _uniform

NUM_GATES = {"rnn_relu": 1, "rnn_tanh": 1, "lstm": 4, "gru": 3}


def rnn_param_size(mode, num_layers, input_size, state_size, bidirectional=False):
    """Length of the flat `parameters` vector, MXNet's formula."""
    G, H, D = NUM_GATES[mode], state_size, 2 if bidirectional else 1
    first = (input_size + H + 2) * G * H
    rest = (D * H + H + 2) * G * H
    return D * (first + (num_layers - 1) * rest)


def rnn_param_layout(mode, num_layers, input_size, state_size, bidirectional=False):
    """Every piece of the flat vector in order: (layer, direction, kind, offset, shape).

    kind is 'wx', 'wh', 'bx' or 'bh'; shapes are (gates*H, in), (gates*H, H),
    (gates*H,), (gates*H,).
    """
    G, H, D = NUM_GATES[mode], state_size, 2 if bidirectional else 1
    pieces, p = [], 0
    for layer in range(num_layers):
        n_in = input_size if layer == 0 else D * H
        for d in range(D):
            for kind, shape in (("wx", (G * H, n_in)), ("wh", (G * H, H))):
                pieces.append((layer, d, kind, p, shape))
                p += shape[0] * shape[1]
    for layer in range(num_layers):
        for d in range(D):
            for kind in ("bx", "bh"):
                pieces.append((layer, d, kind, p, (G * H,)))
                p += G * H
    return pieces


def split_parameters(flat, mode, num_layers, input_size, state_size, bidirectional=False):
    """Views of `flat`: a list over layers of lists over directions of {kind: array}."""
    D = 2 if bidirectional else 1
    out = [[{} for _ in range(D)] for _ in range(num_layers)]
    for layer, d, kind, p, shape in rnn_param_layout(mode, num_layers, input_size,
                                                     state_size, bidirectional):
        size = int(np.prod(shape))
        out[layer][d][kind] = flat[p:p + size].reshape(shape)
    return out


@register
class RNN(Operator):
    """Multi-layer, optionally bidirectional RNN/LSTM/GRU over data (T, N, C)."""

    op_name = "RNN"
    params = {
        "state_size": Param("int", required=True),
        "num_layers": Param("int", required=True),
        "bidirectional": Param("bool", False),
        "mode": Param("str", required=True, choices=tuple(NUM_GATES)),
        "p": Param("float", 0.0),
        "state_outputs": Param("bool", False),
        "projection_size": Param("int", None, optional=True),
        "lstm_state_clip_min": Param("float", None, optional=True),
        "lstm_state_clip_max": Param("float", None, optional=True),
        "lstm_state_clip_nan": Param("bool", False),
        "use_sequence_length": Param("bool", False),
    }

    def check_attrs(self):
        for name in ("state_size", "num_layers"):
            if getattr(self, name) < 1:
                self.error(f"{name} must be >= 1, received {getattr(self, name)}", ValueError)
        if not 0.0 <= self.p < 1.0:
            self.error(f"p (dropout between layers) must be in [0, 1), received {self.p}",
                       ValueError)
        unsupported = [("projection_size", self.projection_size is not None),
                       ("lstm_state_clip_min", self.lstm_state_clip_min is not None),
                       ("lstm_state_clip_max", self.lstm_state_clip_max is not None),
                       ("use_sequence_length", self.use_sequence_length)]
        for name, given in unsupported:
            if given:
                self.error(f"{name} is not implemented in raymod (MXNet supports it only "
                           f"with cuDNN); leave it unset", NotImplementedError)
        self._D = 2 if self.bidirectional else 1
        self._G = NUM_GATES[self.mode]
        self._kernel = make_kernel(self.mode)

    # Memory (the executor's planner): backward reads every input (the initial states
    # start the recurrence) and the output (the last layer's hidden states), never
    # the state outputs; nothing runs in place.
    def backward_inputs(self):
        return range(self.num_inputs)

    def backward_outputs(self):
        return (0,)

    def list_arguments(self):
        args = ["data", "parameters", "state"]
        return args + ["state_cell"] if self.mode == "lstm" else args

    def list_outputs(self):
        if not self.state_outputs:
            return ["output"]
        if self.mode == "lstm":
            return ["output", "state_output", "statecell_output"]
        return ["output", "state_output"]

    # ------------------------------------------------------------------ shapes
    def infer_shape(self, in_shapes, out_shapes):
        ins, outs = list(in_shapes), list(out_shapes)
        data = ins[0]
        if data is None:
            return ins, outs
        if len(data) != 3:
            self.error(f"data: expected a 3-D shape (sequence length, batch, input size) "
                       f"(layout TNC), received {tuple(data)}")
        T, N, C = data
        H, LD = self.state_size, self.num_layers * self._D
        if C:
            self.assign_shape(ins, 1, (rnn_param_size(self.mode, self.num_layers, C, H,
                                                      self.bidirectional),), "parameters")
        state = (LD, N, H)
        for i in range(2, len(ins)):
            self.assign_shape(ins, i, state, self.list_arguments()[i])
        N = ins[2][1] if ins[2] is not None else N
        state = (LD, N, H)
        outs[0] = self.merged_output(outs[0], (T, N, self._D * H), "output")
        for i in range(1, len(outs)):
            outs[i] = self.merged_output(outs[i], state, self.list_outputs()[i])
        if N and not data[1]:
            self.assign_shape(ins, 0, (T, N, C), "data")
        return ins, outs

    # ------------------------------------------------------------------ forward
    def forward(self, xp, inputs, outputs, ws, is_train):
        x, flat = inputs[0], inputs[1]
        T, N, _ = x.shape
        L, D, H = self.num_layers, self._D, self.state_size
        weights = split_parameters(flat, self.mode, L, x.shape[2], H, self.bidirectional)
        dropout = is_train and self.p > 0 and L > 1
        ws.saved["dropout"] = dropout
        keep = ws.for_backward          # what backward reads: kept only when it will run
        layer_in = x
        for layer in range(L):
            y = self._layer_output(keep, outputs, layer, T, N, x.dtype)
            gates = self._gates(keep, layer, y)
            self._project(xp, ws, layer, layer_in, weights[layer], gates)
            for d, dirn in enumerate(self._directions(keep, layer, y, gates, inputs)):
                WhT = self._recurrent_weights(xp, ws, layer, d, weights[layer][d]["wh"])
                if self.mode == "gru":      # bh_n sits inside r * (...): added per step
                    self._kernel.forward(xp, ws, dirn, WhT, weights[layer][d]["bh"][2 * H:])
                else:
                    self._kernel.forward(xp, ws, dirn, WhT)
                self._write_states(xp, outputs, layer * D + d, dirn)
            if dropout and layer < L - 1:
                layer_in = self._dropout(xp, ws, layer, y)
            else:
                layer_in = y

    # `keep(key, shape, dtype)` fetches what forward leaves for backward: ws.for_backward
    # in forward, ws.buffer (the kept arrays) in backward.
    def _layer_output(self, keep, outputs, layer, T, N, dtype):
        if layer == self.num_layers - 1:
            return outputs[0]
        return keep(f"out{layer}", (T, N, self._D * self.state_size), dtype)

    def _layer_input(self, ws, inputs, layer):
        if layer == 0:
            return inputs[0]
        key = f"in{layer}" if ws.saved["dropout"] else f"out{layer - 1}"
        return ws.buffer(key, self._out_shape(inputs[0]), inputs[0].dtype)

    def _out_shape(self, x):
        return (x.shape[0], x.shape[1], self._D * self.state_size)

    def _gates(self, keep, layer, y):
        """(T, N, D, gates*H); a vanilla RNN's activations are its outputs."""
        T, N, _ = y.shape
        if self.mode in ("rnn_relu", "rnn_tanh"):
            return y.reshape(T, N, self._D, self.state_size)
        return keep(f"gates{layer}", (T, N, self._D, self._G * self.state_size), y.dtype)

    def _directions(self, keep, layer, y, gates, inputs):
        T, N, _ = y.shape
        D, H, GH, dt = self._D, self.state_size, self._G * self.state_size, y.dtype
        h0 = inputs[2]
        c0 = inputs[3] if self.mode == "lstm" else None
        vanilla = self.mode in ("rnn_relu", "rnn_tanh")
        kept = {}
        if self.mode == "lstm":
            kept = {"C": keep(f"c{layer}", (T, N, D, H), dt),
                    "TC": keep(f"tc{layer}", (T, N, D, H), dt)}
        elif self.mode == "gru":
            kept = {"R": keep(f"r{layer}", (D, T, N, GH), dt)}
        dirs = []
        for d in range(D):
            i = layer * D + d
            kw = {k: (v[d] if k == "R" else v[:, :, d]) for k, v in kept.items()}
            G = gates[:, :, d]
            out = G if vanilla else y[:, :, d * H:(d + 1) * H]
            dirs.append(Direction((layer, d), G, out, h0[i], None if c0 is None else c0[i],
                                  d == 1, **kw))
        return dirs

    def _gate_scale(self, xp, ws, dtype):
        """Per gate row: 1/2 for sigmoid gates (computed as tanh(x/2)), 1 otherwise."""
        cached = ws.saved.get("scale")
        if cached is None or cached.dtype != dtype:
            scale = np.ones((self._G, self.state_size), dtype=dtype)
            scale[list(self._kernel.sigmoid_gates)] = 0.5
            cached = ws.saved["scale"] = xp.asarray(scale.reshape(-1))
        return cached

    def _project(self, xp, ws, layer, layer_in, weights, gates):
        """Gates of every step and direction = x @ Wx^T + bias, one GEMM."""
        T, N, C = layer_in.shape
        D, H, GH, dt = self._D, self.state_size, self._G * self.state_size, layer_in.dtype
        scale = self._gate_scale(xp, ws, dt)
        W = ws.scratch("wx", (D * GH, C), dt)
        bias = ws.scratch("bias", (D, GH), dt)
        for d, w in enumerate(weights):
            xp.multiply(w["wx"], scale.reshape(GH, 1), out=W[d * GH:(d + 1) * GH])
            xp.add(w["bx"], w["bh"], out=bias[d])
            if self.mode == "gru":
                xp.copyto(bias[d, 2 * H:], w["bx"][2 * H:])
            bias[d] *= scale
        out = gates.reshape(T * N, D * GH)
        xp.dot(layer_in.reshape(T * N, C), W.T, out=out)
        out += bias.reshape(1, D * GH)

    def _recurrent_weights(self, xp, ws, layer, d, wh):
        """Scaled Wh^T, contiguous: small GEMMs with a transposed operand are much slower."""
        WhT = ws.scratch("whT", wh.shape[::-1], wh.dtype)
        xp.multiply(wh.T, self._gate_scale(xp, ws, wh.dtype), out=WhT)
        return WhT

    def _write_states(self, xp, outputs, i, dirn):
        if not self.state_outputs:
            return
        last = 0 if dirn.reverse else dirn.out.shape[0] - 1
        xp.copyto(outputs[1][i], dirn.out[last])
        if self.mode == "lstm":
            xp.copyto(outputs[2][i], dirn.C[last])

    def _dropout(self, xp, ws, layer, y):
        """The next layer's input: y * mask, mask = Bernoulli(1-p) / (1-p)."""
        mask = ws.for_backward(f"mask{layer}", y.shape, y.dtype)
        if ws.rng is None:
            ws.rng = xp.random.default_rng(FALLBACK_SEED)
        u = ws.scratch("uniform", y.shape, np.float64 if y.dtype == np.float64 else np.float32)
        _uniform(ws.rng, u)
        keep = 1.0 - self.p
        xp.less(u, keep, out=mask)
        mask *= 1.0 / keep
        dropped = ws.for_backward(f"in{layer + 1}", y.shape, y.dtype)
        xp.multiply(y, mask, out=dropped)
        return dropped

    # ------------------------------------------------------------------ backward
    def backward(self, xp, out_grads, inputs, outputs, in_grads, ws):
        x = inputs[0]
        T, N, C = x.shape
        L, D, H, GH, dt = self.num_layers, self._D, self.state_size, \
            self._G * self.state_size, x.dtype
        weights = split_parameters(inputs[1], self.mode, L, C, H, self.bidirectional)
        grads = None if in_grads[1] is None else \
            split_parameters(in_grads[1], self.mode, L, C, H, self.bidirectional)
        heads = self._state_heads(out_grads)
        dA = ws.scratch("dA", (T, N, D, GH), dt)
        dR = ws.scratch("dR", (T, N, D, GH), dt) if self.mode == "gru" else dA
        dy = out_grads[0]
        if dy is None:
            dy = ws.scratch("zero_dy", self._out_shape(x), dt)
            dy.fill(0)
        for layer in range(L - 1, -1, -1):
            y = self._layer_output(ws.buffer, outputs, layer, T, N, dt)
            dirs = self._directions(ws.buffer, layer, y, self._gates(ws.buffer, layer, y),
                                    inputs)
            for d, dirn in enumerate(dirs):
                self._backward_direction(xp, ws, dirn, layer * D + d, dA[:, :, d],
                                         dR[:, :, d], weights[layer][d]["wh"],
                                         dy[:, :, d * H:(d + 1) * H], heads, in_grads)
            layer_in = self._layer_input(ws, inputs, layer)
            if grads is not None:
                self._weight_grads(xp, ws, layer_in, dirs, dA, dR, grads[layer])
            if layer == 0:
                if in_grads[0] is not None:
                    self._input_grad(xp, ws, 0, weights[0], dA, in_grads[0])
                break
            dx = ws.scratch("dlayer", self._out_shape(x), dt)
            self._input_grad(xp, ws, layer, weights[layer], dA, dx)
            if ws.saved["dropout"]:
                dx *= ws.buffer(f"mask{layer - 1}", dx.shape, dt)
            dy = dx

    def _state_heads(self, out_grads):
        """Head gradients of the state outputs (None when absent)."""
        dhy = out_grads[1] if self.state_outputs and len(out_grads) > 1 else None
        dcy = out_grads[2] if self.state_outputs and self.mode == "lstm" \
            and len(out_grads) > 2 else None
        return dhy, dcy

    def _backward_direction(self, xp, ws, dirn, i, dA, dR, wh, dout, heads, in_grads):
        dhy, dcy = heads
        dhT = None if dhy is None else dhy[i]
        dh0 = None if in_grads[2] is None else in_grads[2][i]
        if self.mode == "lstm":
            dcT = None if dcy is None else dcy[i]
            dc0 = None if in_grads[3] is None else in_grads[3][i]
            self._kernel.backward(xp, ws, dirn, dA, wh, dout, dhT, dcT, dh0, dc0)
        elif self.mode == "gru":
            self._kernel.backward(xp, ws, dirn, dA, dR, wh, dout, dhT, dh0)
        else:
            self._kernel.backward(xp, ws, dirn, dA, wh, dout, dhT, dh0)

    def _weight_grads(self, xp, ws, layer_in, dirs, dA, dR, grads):
        """dWx, dWh and both biases of one layer, each a single GEMM or sum over all steps."""
        T, N, C = layer_in.shape
        D, H, GH, dt = self._D, self.state_size, self._G * self.state_size, layer_in.dtype
        dA2 = dA.reshape(T * N, D * GH)
        x2 = layer_in.reshape(T * N, C)
        if D == 1:
            xp.dot(dA2.T, x2, out=grads[0]["wx"])
        else:
            dw = ws.scratch("dwx", (D * GH, C), dt)
            xp.dot(dA2.T, x2, out=dw)
            for d in range(D):
                xp.copyto(grads[d]["wx"], dw[d * GH:(d + 1) * GH])
        db = ws.scratch("db", (D, GH), dt)
        xp.sum(dA2, axis=0, out=db.reshape(D * GH))
        dbh = db
        if dR is not dA:
            dbh = ws.scratch("dbh", (D, GH), dt)
            xp.sum(dR.reshape(T * N, D * GH), axis=0, out=dbh.reshape(D * GH))
        tmp = ws.scratch("dwh_first", (GH, H), dt)
        for d, dirn in enumerate(dirs):
            xp.copyto(grads[d]["bx"], db[d])
            xp.copyto(grads[d]["bh"], dbh[d])
            dRd = dR[:, :, d]
            cur, prev, t0 = dirn.shifted()
            xp.dot(dRd[cur].reshape(-1, GH).T, dirn.out[prev].reshape(-1, H),
                   out=grads[d]["wh"])
            xp.dot(dRd[t0].T, dirn.h0, out=tmp)
            grads[d]["wh"] += tmp

    def _input_grad(self, xp, ws, layer, weights, dA, dx):
        """dx = dA @ Wx (unscaled, both directions stacked): one GEMM."""
        T, N = dA.shape[:2]
        D, GH = self._D, self._G * self.state_size
        if D == 1:
            W = weights[0]["wx"]
        else:
            W = ws.scratch("wxs", (D * GH, weights[0]["wx"].shape[1]), dA.dtype)
            for d, w in enumerate(weights):
                xp.copyto(W[d * GH:(d + 1) * GH], w["wx"])
        xp.dot(dA.reshape(T * N, D * GH), W, out=dx.reshape(T * N, W.shape[1]))
