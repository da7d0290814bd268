"""MXNet's `mx.test_utils` checks: finite-difference gradients, forward/backward checks.

MXNet's data helpers (`download`, `get_mnist`, `get_mnist_ubyte`,
`get_mnist_iterator`) live in raymod.datasets and are re-exported here.

Gradients are checked in float64 by central differences of one scalar
objective: `sum(output * proj)` for an ordinary output (proj a fixed random
head gradient), and the operator's own objective for a loss output, whose
backward ignores the head gradient (section 12.2 of the reference).
"""
import numpy as np

from .context import cpu, to_numpy
from .datasets import download, get_mnist, get_mnist_iterator, get_mnist_ubyte  # noqa: F401


def default_context():
    return cpu(0)


def _as_numpy(a):
    if hasattr(a, "asnumpy"):
        return np.asarray(a.asnumpy())
    return to_numpy(a)


def almost_equal(a, b, rtol=None, atol=None, equal_nan=False):
    rtol = 1e-5 if rtol is None else rtol
    atol = 1e-20 if atol is None else atol
    return np.allclose(_as_numpy(a), _as_numpy(b), rtol=rtol, atol=atol, equal_nan=equal_nan)


def assert_almost_equal(a, b, rtol=None, atol=None, names=("a", "b"), equal_nan=False):
    """Raise AssertionError naming the worst element, both values and the tolerances.

    The error of an element is |a - b| / (atol + rtol * |b|) (MXNet's measure);
    the arrays must have the same shape (MXNet would broadcast).
    """
    rtol = 1e-5 if rtol is None else rtol
    atol = 1e-20 if atol is None else atol
    a, b = _as_numpy(a), _as_numpy(b)
    if a.shape != b.shape:
        raise AssertionError(f"shape mismatch: {names[0]} {a.shape} vs {names[1]} {b.shape}")
    if np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan):
        return
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    err = np.abs(a64 - b64) / (atol + rtol * np.abs(b64))
    if equal_nan:
        err = np.where(np.isnan(a64) & np.isnan(b64), 0.0, err)
    err = np.where(np.isnan(err), np.inf, err)
    idx = np.unravel_index(np.argmax(err), err.shape) if err.ndim else ()
    bad = int(np.count_nonzero(err > 1))
    raise AssertionError(
        f"Error {float(err[idx]):f} exceeds tolerance rtol={rtol:e}, atol={atol:e} "
        f"({bad} of {err.size} elements). Location of maximum error: {idx}, "
        f"{names[0]}={a64[idx]!r}, {names[1]}={b64[idx]!r}\n"
        f" {names[0]}: {a!r}\n {names[1]}: {b!r}")


def same_array(array1, array2):
    """True when both view the same memory the same way (a write to one shows in the other)."""
    a, b = array1, array2
    if a.shape != b.shape or a.dtype != b.dtype or a.strides != b.strides:
        return False
    if hasattr(a, "__array_interface__") and hasattr(b, "__array_interface__"):
        return a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
    if hasattr(a, "data") and hasattr(b, "data") and hasattr(a.data, "ptr"):
        return a.data.ptr == b.data.ptr
    return False


def _location_dict(sym, location, what="location"):
    names = sym.list_arguments()
    if isinstance(location, dict):
        unknown = sorted(set(location) - set(names))
        if unknown:
            raise ValueError(f"{what} names {unknown} are not arguments {names}")
        return dict(location)
    location = list(location)
    if len(location) != len(names):
        raise ValueError(f"{what} has {len(location)} arrays for arguments {names}")
    return dict(zip(names, location))


def _aux_dict(sym, aux_states):
    if aux_states is None:
        return None
    names = sym.list_auxiliary_states()
    if isinstance(aux_states, dict):
        return dict(aux_states)
    return dict(zip(names, aux_states, strict=True))


def _bind(sym, ctx, location, aux, grad_req, dtype):
    xp = ctx.xp
    args = {k: xp.asarray(np.array(_as_numpy(v), dtype=dtype)) for k, v in location.items()}
    aux_arrays = None
    if aux is not None:
        aux_arrays = {k: xp.asarray(np.array(_as_numpy(v), dtype=dtype)) for k, v in aux.items()}
    grads = {k: xp.zeros_like(v) for k, v in args.items() if grad_req.get(k, "null") != "null"}
    return sym.bind(ctx, args, args_grad=grads, grad_req=grad_req, aux_states=aux_arrays)


def _objective(exe, projections):
    """The scalar whose gradient the executor's backward computes."""
    total = 0.0
    steps = {id(s.node): s for s in exe._plan.steps}
    for (node, _), out, proj in zip(exe.symbol._heads, exe.outputs, projections):
        step = steps.get(id(node))
        if step is not None and step.op.is_loss:
            total += float(step.op.loss(exe._plan.xp, step.ins, step.outs))
        else:
            total += float(np.sum(to_numpy(out).astype(np.float64) * proj))
    return total


def numeric_grad(exe, location, projections, names, eps, is_train):
    """Central differences of the objective for every element of each named argument."""
    grads = {}
    for name in names:
        arr = exe.arg_dict[name]
        host = to_numpy(arr).astype(np.float64)
        g = np.zeros_like(host)
        flat = host.reshape(-1)
        for i in range(flat.size):
            orig = flat[i]
            flat[i] = orig + eps
            exe.forward(is_train=is_train, **{name: host})
            f_plus = _objective(exe, projections)
            flat[i] = orig - eps
            exe.forward(is_train=is_train, **{name: host})
            f_minus = _objective(exe, projections)
            flat[i] = orig
            g.reshape(-1)[i] = (f_plus - f_minus) / (2 * eps)
        exe.forward(is_train=is_train, **{name: host})
        grads[name] = g
    return grads


def check_numeric_gradient(sym, location, aux_states=None, numeric_eps=1e-3, rtol=1e-2,
                           atol=None, grad_nodes=None, use_forward_train=True, ctx=None,
                           grad_stype_dict=None, dtype=np.float64):
    """Compare the symbolic gradient with central finite differences (MXNet's signature)."""
    ctx = ctx or default_context()
    location = _location_dict(sym, location)
    if grad_nodes is None:
        grad_nodes = list(sym.list_arguments())
    elif isinstance(grad_nodes, dict):
        grad_nodes = list(grad_nodes)
    unknown = sorted(set(grad_nodes) - set(location))
    if unknown:
        raise ValueError(f"grad_nodes {unknown} are not in location {sorted(location)}")
    grad_req = {n: ("write" if n in grad_nodes else "null") for n in sym.list_arguments()}
    exe = _bind(sym, ctx, location, _aux_dict(sym, aux_states), grad_req, dtype)
    exe.forward(is_train=use_forward_train)
    rng = np.random.default_rng(1234)
    projections = [rng.normal(size=tuple(o.shape)) for o in exe.outputs]
    exe.backward([ctx.xp.asarray(p.astype(dtype)) for p in projections])
    symbolic = {n: to_numpy(exe.grad_dict[n]).astype(np.float64).copy() for n in grad_nodes}
    # Aux states change in backward (BatchNorm); restore them so each evaluation matches.
    if aux_states is not None:
        exe.copy_params_from({}, {k: np.asarray(_as_numpy(v), dtype=dtype)
                                  for k, v in _aux_dict(sym, aux_states).items()})
    numeric = numeric_grad(exe, location, projections, grad_nodes, numeric_eps,
                           use_forward_train)
    for name in grad_nodes:
        assert_almost_equal(numeric[name], symbolic[name], rtol=rtol,
                            atol=1e-6 if atol is None else atol,
                            names=(f"NUMERICAL_{name}", f"BACKWARD_{name}"))


def check_symbolic_forward(sym, location, expected, rtol=1e-4, atol=None, aux_states=None,
                           ctx=None, equal_nan=False, dtype=np.float32):
    """Bind at `location`, run forward (inference) and compare each output with `expected`."""
    ctx = ctx or default_context()
    location = _location_dict(sym, location)
    exe = _bind(sym, ctx, location, _aux_dict(sym, aux_states), {}, dtype)
    outputs = exe.forward(is_train=False)
    if isinstance(expected, dict):
        expected = [expected[k] for k in sym.list_outputs()]
    for name, out, exp in zip(sym.list_outputs(), outputs, expected, strict=True):
        assert_almost_equal(out, exp, rtol=rtol, atol=atol, names=(f"FORWARD_{name}",
                            f"EXPECTED_{name}"), equal_nan=equal_nan)
    return [to_numpy(o) for o in outputs]


def check_symbolic_backward(sym, location, out_grads, expected, rtol=1e-5, atol=None,
                            aux_states=None, grad_req="write", ctx=None, grad_stypes=None,
                            equal_nan=False, dtype=np.float32):
    """Bind, run forward (training) and backward(out_grads); compare gradients."""
    ctx = ctx or default_context()
    location = _location_dict(sym, location)
    if isinstance(expected, (list, tuple)):
        expected = dict(zip(sym.list_arguments(), expected))
    if isinstance(grad_req, str):
        grad_req = {k: grad_req for k in expected}
    elif isinstance(grad_req, (list, tuple)):
        grad_req = dict(zip(sym.list_arguments(), grad_req, strict=True))
    reqs = {n: grad_req.get(n, "null") for n in sym.list_arguments()}
    exe = _bind(sym, ctx, location, _aux_dict(sym, aux_states), reqs, dtype)
    # As MXNet, start every gradient buffer at random values: 'write' must overwrite
    # them and 'add' must add to them.
    rng = np.random.default_rng(0)
    initial = {}
    for name, g in exe.grad_dict.items():
        initial[name] = rng.normal(size=g.shape).astype(dtype)
        g[...] = ctx.xp.asarray(initial[name])
    exe.forward(is_train=True)
    if out_grads is not None:
        if isinstance(out_grads, dict):
            out_grads = [out_grads.get(k) for k in sym.list_outputs()]
        out_grads = [None if g is None else ctx.xp.asarray(np.asarray(_as_numpy(g), dtype=dtype))
                     for g in out_grads]
    exe.backward(out_grads)
    for name, exp in expected.items():
        if reqs.get(name, "null") == "null":
            continue
        want = np.asarray(_as_numpy(exp))
        if reqs[name] == "add":
            want = want + initial[name]
        assert_almost_equal(exe.grad_dict[name], want, rtol=rtol, atol=atol,
                            names=(f"BACKWARD_{name}", f"EXPECTED_{name}"), equal_nan=equal_nan)
    return {k: to_numpy(v) for k, v in exe.grad_dict.items()}
