"""`Optimizer`: MXNet 1.x's optimizer base class, its registry and `create`.

Update math lives in the family files (`sgd.py`, `adam.py`, `adaptive.py`);
this file owns what every optimizer shares: learning rate and weight decay per
parameter (multipliers by index or name), update counting, clipping rules,
multi-precision wrapping and reusable scratch buffers.

Arrays are numpy (CPU) or cupy (GPU) arrays, updated in place. Indices are
ints (MXNet's Module without a kvstore) or parameter names (raymod's keying,
and MXNet's kvstore updater); every lookup accepts both.
"""
import warnings

import numpy as np

from ..context import Context, array_module

__all__ = ["Optimizer", "register", "create"]


def device_id_of(arr):
    """The device number of `arr`: its `context` label (raymod NDArray), the CUDA
    device id of a cupy array, else 0 (MXNet's ``weight.context.device_id``)."""
    ctx = getattr(arr, "context", None)
    if isinstance(ctx, Context):
        return ctx.device_id
    device = getattr(arr, "device", None)  # numpy's is the string 'cpu'
    return int(getattr(device, "id", 0) or 0)


def zeros_like(weight, dtype=None):
    """Zeros with `weight`'s shape on `weight`'s device (state allocation)."""
    xp = array_module(weight)
    dtype = weight.dtype if dtype is None else dtype
    if xp is np:
        return np.zeros(weight.shape, dtype=dtype)
    with weight.device:  # cupy allocates on the current device
        return xp.zeros(weight.shape, dtype=dtype)


def copy_as(weight, dtype):
    """A copy of `weight` cast to `dtype`, on the same device (fp32 master copies)."""
    xp = array_module(weight)
    if xp is np:
        return weight.astype(dtype)
    with weight.device:
        return weight.astype(dtype)


def decayed_grad(weight, grad, rescale_grad, wd, clip, out, tmp):
    """out = clip(rescale_grad*grad + wd*weight) (`clip` None: no clipping; tmp clobbered).

    Without weight decay the wd*weight term is skipped (two passes fewer): adding
    0*weight changes nothing while the weights are finite.
    """
    xp = array_module(weight)
    xp.multiply(grad, rescale_grad, out=out)
    if wd:
        xp.multiply(weight, wd, out=tmp)
        out += tmp
    if clip is not None:
        xp.clip(out, -clip, clip, out=out)
    return out


def ema(avg, value, decay, tmp):
    """avg = decay*avg + (1-decay)*value, in place (`tmp` clobbered; may be `value`)."""
    xp = array_module(avg)
    avg *= decay
    xp.multiply(value, 1.0 - decay, out=tmp)
    avg += tmp


def _check_same_shape(index, weight, grad):
    if tuple(weight.shape) != tuple(grad.shape):
        raise ValueError(f"optimizer update of parameter {index!r}: grad has shape "
                         f"{tuple(grad.shape)} but weight has shape {tuple(weight.shape)}")


class Optimizer:
    """The base class inherited by all optimizers (MXNet's `mx.optimizer.Optimizer`).

    Parameters
    ----------
    rescale_grad : float, default 1.0
        Multiply the gradient with `rescale_grad` before updating (Module uses
        ``1.0/batch_size``).
    param_idx2name : dict of int or str to str, optional
        Maps an update index to its parameter name. When given, parameters whose
        name does not end with ``_weight`` or ``_gamma`` get weight decay 0.
    wd : float, default 0.0
        Weight decay (L2 regularisation) coefficient.
    clip_gradient : float, optional
        Clip gradients to ``[-clip_gradient, clip_gradient]``. Optimizers that
        MXNet implements with a fused kernel (SGD, NAG, Adam, RMSProp) clip only
        when it is truthy and non-negative; the others (AdaGrad, AdaDelta, Adamax,
        Nadam) clip whenever it is not None (so 0 zeroes the gradient), as in MXNet.
        A negative value disables clipping everywhere (raymod; MXNet's Python
        optimizers would clip to an empty range).
    learning_rate : float, optional
        The initial learning rate; 0.01 when neither it nor `lr_scheduler` is given.
        When both are given and the scheduler's `base_lr` differs, the scheduler's
        `base_lr` is overwritten (MXNet prints a UserWarning; raymod warns).
    lr_scheduler : LRScheduler, optional
        Learning rate schedule, called with `num_update`.
    sym : Symbol, optional
        Any object with ``attr_dict()`` ({name: {attr: str}}) and, preferably,
        ``list_arguments()``; ``__lr_mult__`` / ``__wd_mult__`` attributes of its
        arguments set the per-parameter multipliers.
    begin_num_update : int, default 0
        The initial update count.
    multi_precision : bool, default False
        Keep an fp32 master copy of fp16 weights and update that.
    param_dict : dict, optional
        Index -> object with ``lr_mult`` and ``wd_mult`` attributes (Gluon
        parameters); looked up before the multiplier dicts. Never serialised.
    """

    opt_registry = {}

    # Attributes that are not the optimizer's configuration or progress: a
    # parameter dict MXNet also drops when pickling, reusable scratch memory,
    # and an alias of one entry of `_all_index_update_counts`.
    _TRANSIENT_ATTRS = ("param_dict", "_scratch", "_index_update_count")

    def __init__(self, rescale_grad=1., param_idx2name=None, wd=0.,
                 clip_gradient=None, learning_rate=None,
                 lr_scheduler=None, sym=None, begin_num_update=0,
                 multi_precision=False, param_dict=None):
        if param_idx2name is None:
            param_idx2name = {}
        if not isinstance(param_idx2name, dict):
            raise TypeError("param_idx2name should be a dict of param indexes to names, "
                            f"received {type(param_idx2name).__name__}")
        self.rescale_grad = rescale_grad
        self.lr_scheduler = lr_scheduler
        if self.lr_scheduler is None and learning_rate is None:
            learning_rate = 0.01
        self.lr = learning_rate
        if self.lr_scheduler is not None and learning_rate is not None:
            if self.lr_scheduler.base_lr != learning_rate:
                warnings.warn("learning rate from ``lr_scheduler`` has been "
                              "overwritten by ``learning_rate`` in optimizer.", UserWarning)
                self.lr_scheduler.base_lr = learning_rate

        self.wd = wd
        self.lr_mult = {}
        self.wd_mult = {}
        self.begin_num_update = begin_num_update
        self.num_update = begin_num_update
        self._all_index_update_counts = {0: {}}
        self._index_update_count = self._all_index_update_counts[0]
        self.clip_gradient = clip_gradient
        self.multi_precision = multi_precision

        self.idx2name = param_idx2name.copy()
        self.sym_info = _sym_info(sym) if sym is not None else ()
        self.param_dict = param_dict if param_dict else {}
        self._scratch = {}

        self.set_lr_mult({})
        self.set_wd_mult({})

    # ------------------------------------------------------------------ registry
    @staticmethod
    def register(klass):
        """Register an optimizer class under its lower-cased class name."""
        if not isinstance(klass, type):
            raise TypeError(f"register expects a class, received {klass!r}")
        name = klass.__name__.lower()
        if name in Optimizer.opt_registry:
            old = Optimizer.opt_registry[name]
            warnings.warn(f"WARNING: New optimizer {klass.__module__}.{klass.__name__} is "
                          f"overriding existing optimizer {old.__module__}.{old.__name__}")
        Optimizer.opt_registry[name] = klass
        return klass

    @staticmethod
    def create_optimizer(name, **kwargs):
        """Instantiate a registered optimizer by (case-insensitive) name."""
        if not isinstance(name, str):
            raise TypeError(f"optimizer name must be a str, received {name!r}")
        if name.lower() in Optimizer.opt_registry:
            return Optimizer.opt_registry[name.lower()](**kwargs)
        raise ValueError("Cannot find optimizer %s" % name)

    # ------------------------------------------------------------ learning rate
    @property
    def learning_rate(self):
        """The current learning rate (the scheduler's value at `num_update`)."""
        if self.lr_scheduler is not None:
            return self.lr_scheduler(self.num_update)
        return self.lr

    def set_learning_rate(self, lr):
        """Set a new learning rate; raises UserWarning when a scheduler is set (as MXNet)."""
        if self.lr_scheduler is not None:
            raise UserWarning("LRScheduler of the optimizer has already been "
                              "defined. Note that set_learning_rate can mutate "
                              "the value of the learning rate of the optimizer "
                              "only when the LRScheduler of the optimizer is "
                              "undefined.")
        self.lr = lr

    def set_lr_scale(self, args_lrscale):  # pylint: disable=unused-argument
        """[DEPRECATED] Sets lr scale. Use set_lr_mult instead."""
        raise DeprecationWarning

    def set_lr_mult(self, args_lr_mult):
        """Set per-parameter learning rate multipliers.

        Starts from the ``__lr_mult__`` attributes of `sym`'s arguments, then
        applies `args_lr_mult` (keys: parameter names or update indices).
        """
        self.lr_mult = {}
        if self.sym_info:
            attr, arg_names = self.sym_info
            for name in arg_names:
                if name in attr and "__lr_mult__" in attr[name]:
                    self.lr_mult[name] = float(attr[name]["__lr_mult__"])
        self.lr_mult.update(args_lr_mult)

    def set_wd_mult(self, args_wd_mult):
        """Set per-parameter weight decay multipliers.

        Names in `idx2name` not ending with ``_weight`` or ``_gamma`` get 0,
        then `sym`'s ``__wd_mult__`` attributes apply, then `args_wd_mult`.
        """
        self.wd_mult = {}
        for n in self.idx2name.values():
            if not (n.endswith("_weight") or n.endswith("_gamma")):
                self.wd_mult[n] = 0.0
        if self.sym_info:
            attr, arg_names = self.sym_info
            for name in arg_names:
                if name in attr and "__wd_mult__" in attr[name]:
                    self.wd_mult[name] = float(attr[name]["__wd_mult__"])
        self.wd_mult.update(args_wd_mult)

    # ------------------------------------------------------------ counting
    def _set_current_context(self, device_id):
        """Switch the per-index update counters to those of device `device_id`."""
        if device_id not in self._all_index_update_counts:
            self._all_index_update_counts[device_id] = {}
        self._index_update_count = self._all_index_update_counts[device_id]

    def _update_count(self, index):
        """Count one more update of `index` (or of each index of a list)."""
        if not isinstance(index, (list, tuple)):
            index = [index]
        for idx in index:
            if idx not in self._index_update_count:
                self._index_update_count[idx] = self.begin_num_update
            self._index_update_count[idx] += 1
            self.num_update = max(self._index_update_count[idx], self.num_update)

    def _get_lrs(self, indices):
        """Learning rates of `indices`: scheduled or base lr times each multiplier."""
        if self.lr_scheduler is not None:
            lr = self.lr_scheduler(self.num_update)
        else:
            lr = self.lr
        return [lr * self._mult(index, "lr_mult", self.lr_mult) for index in indices]

    def _get_lr(self, index):
        """Learning rate of one index."""
        return self._get_lrs([index])[0]

    def _get_wds(self, indices):
        """Weight decays of `indices`: `wd` times each multiplier."""
        return [self.wd * self._mult(index, "wd_mult", self.wd_mult) for index in indices]

    def _get_wd(self, index):
        """Weight decay of one index."""
        return self._get_wds([index])[0]

    def _mult(self, index, attr, mults):
        # Lookup order is MXNet's: param_dict, then the index itself, then its name.
        if index in self.param_dict:
            return getattr(self.param_dict[index], attr)
        if index in mults:
            return mults[index]
        if index in self.idx2name:
            return mults.get(self.idx2name[index], 1.0)
        return 1.0

    # ------------------------------------------------------------ clipping rules
    def _kernel_clip(self):
        """Clip bound for optimizers MXNet runs as fused kernels (None: no clip)."""
        c = self.clip_gradient
        return c if c and c >= 0 else None

    def _python_clip(self):
        """Clip bound for optimizers MXNet writes in Python (`is not None` test)."""
        c = self.clip_gradient
        return c if c is not None and c >= 0 else None

    # ------------------------------------------------------------ states and updates
    def create_state(self, index, weight):
        """Create the auxiliary state (e.g. momentum) of one weight; None by default."""
        return None

    def create_state_multi_precision(self, index, weight):
        """Create state, with an fp32 master copy first when fp16 and `multi_precision`."""
        if self.multi_precision and weight.dtype == np.float16:
            master = copy_as(weight, np.float32)
            return (master, self.create_state(index, master))
        if weight.dtype == np.float16 and not self.multi_precision:
            warnings.warn("Accumulating with float16 in optimizer can lead to "
                          "poor accuracy or slow convergence. "
                          "Consider using multi_precision=True option of the "
                          "optimizer")
        return self.create_state(index, weight)

    def update(self, index, weight, grad, state):
        """Update `weight` in place from `grad` and `state` (which it updates too)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement update")

    def update_multi_precision(self, index, weight, grad, state):
        """`update`, through the fp32 master copy when fp16 and `multi_precision`."""
        if self.multi_precision and weight.dtype == np.float16:
            master, inner = state
            self.update(index, master, self._grad_fp32(master, grad), inner)
            weight[...] = master
        else:
            self.update(index, weight, grad, state)

    def _grad_fp32(self, master, grad):
        """`grad` cast to float32 in a reused buffer (grad itself is never written)."""
        (g32,) = self._buffers(master, 1, tag="fp32_grad")
        g32[...] = grad
        return g32

    def _buffers(self, like, count, tag="work"):
        """`count` scratch arrays shaped like `like`, reused across steps.

        One flat buffer per (array module, device, dtype, tag, slot), grown to
        the largest parameter seen, so a step allocates nothing after warm-up;
        the views of a shape are kept too, so a step makes no array objects.
        Contents are garbage on entry. Not thread-safe: one optimizer must not
        run two updates at once (Ray actors run calls one at a time by default).
        """
        # _scratch keys: where + (slot,) -> a flat buffer; where + (count, shape) -> views
        xp = array_module(like)
        where = (xp.__name__, device_id_of(like), like.dtype.str, tag)
        views = self._scratch.get(where + (count, like.shape))
        if views is not None:
            return views
        size = int(like.size)
        for slot in range(count):
            buf = self._scratch.get(where + (slot,))
            if buf is None or buf.size < size:
                if xp is np:
                    buf = np.empty(size, dtype=like.dtype)
                else:
                    with like.device:
                        buf = xp.empty(size, dtype=like.dtype)
                # views of the smaller buffer would keep it alive: make them again
                for key in [k for k in self._scratch if len(k) == len(where) + 2]:
                    del self._scratch[key]
                self._scratch[where + (slot,)] = buf
        views = [self._scratch[where + (slot,)][:size].reshape(like.shape)
                 for slot in range(count)]
        self._scratch[where + (count, like.shape)] = views
        return views

    def _prepare(self, index, weight, grad):
        """Common prologue of an update: check shapes, count, per-index lr and wd."""
        _check_same_shape(index, weight, grad)
        self._update_count(index)
        return self._get_lr(index), self._get_wd(index)

    # ------------------------------------------------------------ pickling (Ray)
    def __getstate__(self):
        state = self.__dict__.copy()
        for name in self._TRANSIENT_ATTRS:
            state.pop(name, None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._restore_transients()

    def _restore_transients(self):
        """Recreate what is never serialised (param_dict, scratch, counter alias)."""
        self.param_dict = {}  # set again by whoever owns the parameters
        self._scratch = {}
        counts = self.__dict__.setdefault("_all_index_update_counts", {0: {}})
        self._index_update_count = counts.setdefault(0, {})


def _sym_info(sym):
    """(attr_dict, argument names) of a symbol-like object."""
    if not hasattr(sym, "attr_dict"):
        raise TypeError(f"sym must have attr_dict() (a Symbol), received {type(sym).__name__}")
    attr = sym.attr_dict()
    # list_arguments() keeps op nodes' own attributes out of the multipliers;
    # a plain attr_dict provider falls back to all of its names.
    arg_names = list(sym.list_arguments()) if hasattr(sym, "list_arguments") else list(attr)
    return (attr, arg_names)


# convenience wrappers, MXNet's module-level names
register = Optimizer.register  # pylint: disable=invalid-name
create = Optimizer.create_optimizer  # pylint: disable=invalid-name
