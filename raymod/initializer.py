"""Weight initializers (MXNet 1.x's `mx.init` / `mx.initializer`).

An initializer is called as ``init(InitDesc(name, attrs), arr)`` and fills
`arr` (a numpy or cupy array) in place. A parameter's ``__init__`` attribute
(an initializer's JSON ``dumps()``, e.g. '["zero", {}]') wins; otherwise the
name's suffix picks the rule (see `Initializer.SUFFIX_RULES`). Random draws
come from `raymod.random` (seed with ``raymod.random.seed``).
"""
import json
import logging
import math
import re
import warnings

import numpy as np

from .registry import Registry

from . import random
from .context import array_module

__all__ = ["InitDesc", "Initializer", "register", "alias", "create", "Load", "Mixed",
           "Zero", "One", "Constant", "Uniform", "Normal", "Orthogonal", "Xavier",
           "MSRAPrelu", "Bilinear", "LSTMBias", "FusedRNN"]

class InitDesc(str):
    """The name of a variable (a `str`), with its attributes and the global initializer.

    Parameters
    ----------
    name : str
        Name of the variable.
    attrs : dict of str to str, optional
        Its attributes, from ``Symbol.attr_dict()``.
    global_init : Initializer, optional
        The initializer to fall back to.
    """

    def __new__(cls, name, attrs=None, global_init=None):
        ret = super().__new__(cls, name)
        ret.attrs = attrs or {}
        ret.global_init = global_init
        return ret


def _is_array(arr):
    return isinstance(arr, np.ndarray) or type(arr).__module__.split(".")[0] == "cupy"


def _assign(arr, value):
    """arr[...] = value, moving a host value to the device when `arr` is a cupy array."""
    xp = array_module(arr)
    if xp is np or not isinstance(value, np.ndarray):
        arr[...] = value
        return
    with arr.device:  # copy onto the target's GPU, not the current one
        arr[...] = xp.asarray(value)


class Initializer:
    """The base class of an initializer.

    Subclasses implement ``_init_weight(name, arr)``; the other rules fill
    constants. Keyword arguments given to ``__init__`` are what `dumps` saves.
    """

    # InitDesc path, first match wins ("weight_quantize" is tested after "weight"
    # exactly as MXNet, so it is reached only by names not ending in "weight").
    SUFFIX_RULES = (
        ("weight", "_init_weight"),
        ("bias", "_init_bias"),
        ("gamma", "_init_gamma"),
        ("beta", "_init_beta"),
        ("min", "_init_zero"),
        ("max", "_init_one"),
        ("weight_quantize", "_init_quantized_weight"),
        ("bias_quantize", "_init_quantized_bias"),
    )
    # Deprecated plain-string path: (prefix, suffix, method), first match wins.
    LEGACY_RULES = (
        ("upsampling", "", "_init_bilinear"),
        ("stn_loc", "weight", "_init_zero"),
        ("stn_loc", "bias", "_init_loc_bias"),
        ("", "bias", "_init_bias"),
        ("", "gamma", "_init_gamma"),
        ("", "beta", "_init_beta"),
        ("", "weight", "_init_weight"),
        ("", "moving_mean", "_init_zero"),
        ("", "moving_var", "_init_one"),
        ("", "moving_inv_var", "_init_zero"),
        ("", "moving_avg", "_init_zero"),
        ("", "min", "_init_zero"),
        ("", "max", "_init_one"),
    )

    def __init__(self, **kwargs):
        self._kwargs = kwargs
        self._verbose = False
        self._print_func = None

    def __repr__(self):
        # What help(fit) shows as fit's default initializer: Uniform(scale=0.01).
        args = ", ".join(f"{k}={v!r}" for k, v in self._kwargs.items())
        return f"{type(self).__name__}({args})"

    def set_verbosity(self, verbose=False, print_func=None):
        """Switch logging of every initialised array on or off.

        Parameters
        ----------
        verbose : bool
        print_func : callable, optional
            array -> str statistic; defaults to ``norm(x)/sqrt(x.size)``.
        """
        self._verbose = verbose
        if print_func is None:
            def asum_stat(x):
                xp = array_module(x)
                return str(float(xp.linalg.norm(x.ravel())) / math.sqrt(x.size))
            print_func = asum_stat
        self._print_func = print_func
        return self

    def _verbose_print(self, desc, init, arr):
        if self._verbose and self._print_func:
            logging.info('Initialized %s as %s: %s', desc, init, self._print_func(arr))

    def dumps(self):
        """The initializer as MXNet's JSON string, e.g. '["normal", {"sigma": 0.5}]'."""
        return json.dumps([self.__class__.__name__.lower(), self._kwargs])

    def __call__(self, desc, arr):
        """Initialise `arr` in place for the variable described by `desc`.

        Parameters
        ----------
        desc : InitDesc
            Name and attributes; a plain str takes the deprecated legacy rules.
        arr : numpy.ndarray or cupy.ndarray
        """
        if not isinstance(desc, InitDesc):
            self._legacy_init(desc, arr)
            return
        if desc.global_init is None:
            desc.global_init = self
        init = desc.attrs.get('__init__', "")
        if init:
            create(init)._init_weight(desc, arr)
            self._verbose_print(desc, init, arr)
            return
        for suffix, method in self.SUFFIX_RULES:
            if desc.endswith(suffix):
                getattr(self, method)(desc, arr)
                self._verbose_print(desc, suffix, arr)
                return
        self._init_default(desc, arr)

    def _legacy_init(self, name, arr):
        warnings.warn("Calling initializer with init(str, NDArray) has been deprecated."
                      "please use init(mx.init.InitDesc(...), NDArray) instead.",
                      DeprecationWarning, stacklevel=3)
        if not isinstance(name, str):
            raise TypeError(f"name must be string, received {type(name).__name__}")
        if not _is_array(arr):
            raise TypeError(f"arr must be a numpy or cupy array, received {type(arr).__name__}")
        for prefix, suffix, method in self.LEGACY_RULES:
            if name.startswith(prefix) and name.endswith(suffix):
                getattr(self, method)(name, arr)
                return
        self._init_default(name, arr)

    def _init_bilinear(self, _, arr):
        _assign(arr, _bilinear_kernel(arr.shape))

    def _init_loc_bias(self, name, arr):
        if arr.shape[0] != 6:
            raise ValueError(f"{name}: an stn_loc bias must have 6 elements, "
                             f"received shape {tuple(arr.shape)}")
        _assign(arr, np.array([1.0, 0, 0, 0, 1.0, 0]))

    def _init_zero(self, _, arr):
        arr[...] = 0.0

    def _init_one(self, _, arr):
        arr[...] = 1.0

    def _init_bias(self, _, arr):
        arr[...] = 0.0

    def _init_quantized_bias(self, _, arr):
        arr[...] = 0

    def _init_gamma(self, _, arr):
        arr[...] = 1.0

    def _init_beta(self, _, arr):
        arr[...] = 0.0

    def _init_weight(self, name, arr):
        """Fill a weight; every concrete initializer overrides this."""
        raise NotImplementedError(f"{type(self).__name__} must override _init_weight")

    def _init_quantized_weight(self, _, arr):
        _assign(arr, random.generator().integers(-127, 127, size=arr.shape).astype(np.int8))

    def _init_default(self, name, _):
        raise ValueError(
            'Unknown initialization pattern for %s. '
            'Default initialization is now limited to '
            '"weight", "bias", "gamma" (1.0), and "beta" (0.0).'
            'Please use mx.sym.Variable(init=mx.init.*) to set initialization pattern' % name)


def _bilinear_kernel(shape):
    """MXNet's upsampling kernel; both axes use f from the last dimension, as MXNet."""
    if len(shape) != 4:
        raise ValueError(f"Bilinear initializer needs a 4-D weight, received shape {shape}")
    f = np.ceil(shape[3] / 2.)
    c = (2 * f - 1 - f % 2) / (2. * f)
    wx = 1 - np.abs(np.arange(shape[3]) / f - c)
    wy = 1 - np.abs(np.arange(shape[2]) / f - c)
    kernel = (wy[:, None] * wx[None, :]).astype(np.float32)
    return np.ascontiguousarray(np.broadcast_to(kernel, shape))


# ---------------------------------------------------------------- registry
_registry = Registry(Initializer, "initializer")
_REGISTRY = _registry.entries       # lower-cased name -> Initializer subclass
register = _registry.register
alias = _registry.alias


def create(*args, **kwargs):
    """Create an initializer from an instance, a name, a JSON string or a dict.

    ``create(Uniform(0.1))`` returns the instance; ``create('uniform', scale=0.1)``,
    ``create('["uniform", {"scale": 0.1}]')`` and
    ``create({"initializer": "uniform", "scale": 0.1})`` build one.
    """
    return _registry.create(*args, **kwargs)


# ---------------------------------------------------------------- helpers
class Load:
    """Initialise from a dict of arrays or a `.params` file, else a default.

    ``arg:`` / ``aux:`` prefixes are dropped from the loaded names.

    Parameters
    ----------
    param : str or dict of str to array
        A `.params` file name or a name -> array dict.
    default_init : Initializer, optional
        Used for names not in `param`.
    verbose : bool, default False
        Log where each parameter came from.
    """

    def __init__(self, param, default_init=None, verbose=False):
        if isinstance(param, str):
            from .ndarray import load  # the .params reader; imported when needed
            param = load(param)
        if not isinstance(param, dict):
            raise TypeError(f"param must be a file name or a dict of arrays, "
                            f"received {type(param).__name__}")
        self.param = {}
        for name, arr in param.items():
            if name.startswith('arg:') or name.startswith('aux:'):
                self.param[name[4:]] = arr
            else:
                self.param[name] = arr
        self.default_init = default_init
        self.verbose = verbose

    def __call__(self, name, arr):
        if name in self.param:
            if tuple(arr.shape) != tuple(self.param[name].shape):
                raise ValueError(f'Parameter {name} cannot be initialized from loading. '
                                 f'Shape mismatch, target {tuple(arr.shape)} vs loaded '
                                 f'{tuple(self.param[name].shape)}')
            _assign(arr, self.param[name])
            if self.verbose:
                logging.info('Initialized %s by loading', name)
        else:
            if self.default_init is None:
                raise ValueError(f"Cannot Initialize {name}. Not found in loaded param "
                                 "and no default Initializer is provided.")
            self.default_init(name, arr)
            if self.verbose:
                logging.info('Initialized %s by default', name)


class Mixed:
    """Pick an initializer per parameter by regular expression (first match).

    Parameters
    ----------
    patterns : list of str
        Regular expressions matched (``re.match``) against parameter names.
    initializers : list of Initializer
        One per pattern.
    """

    def __init__(self, patterns, initializers):
        if len(patterns) != len(initializers):
            raise ValueError(f"Mixed needs one initializer per pattern, received "
                             f"{len(patterns)} patterns and {len(initializers)} initializers")
        self.map = list(zip([re.compile(p) for p in patterns], initializers, strict=True))

    def __call__(self, name, arr):
        for prog, init in self.map:
            if prog.match(name):
                init(name, arr)
                return
        raise ValueError(f'Parameter name {name} did not match any pattern. Consider '
                         'add a ".*" pattern at the and with default Initializer.')


# ---------------------------------------------------------------- initializers
@register
@alias("zeros")
class Zero(Initializer):
    """Initialises weights to zero."""

    def __init__(self):
        super().__init__()

    def _init_weight(self, _, arr):
        arr[...] = 0


@register
@alias("ones")
class One(Initializer):
    """Initialises weights to one."""

    def __init__(self):
        super().__init__()

    def _init_weight(self, _, arr):
        arr[...] = 1


@register
class Constant(Initializer):
    """Initialises weights to `value` (a scalar, or an array of the weight's shape)."""

    def __init__(self, value):
        super().__init__(value=value)
        self.value = value

    def _init_weight(self, _, arr):
        _assign(arr, self.value)


@register
class Uniform(Initializer):
    """Weights from U(-scale, scale).

    Parameters
    ----------
    scale : float, default 0.07
    """

    def __init__(self, scale=0.07):
        super().__init__(scale=scale)
        self.scale = scale

    def _init_weight(self, _, arr):
        random.uniform(-self.scale, self.scale, out=arr)


@register
class Normal(Initializer):
    """Weights from N(0, sigma).

    Parameters
    ----------
    sigma : float, default 0.01
        Standard deviation.
    """

    def __init__(self, sigma=0.01):
        super().__init__(sigma=sigma)
        self.sigma = sigma

    def _init_weight(self, _, arr):
        random.normal(0, self.sigma, out=arr)


@register
class Orthogonal(Initializer):
    """Orthogonal weights (Saxe et al.): SVD of a random (nout, nin) matrix, times `scale`.

    Parameters
    ----------
    scale : float, default 1.414
    rand_type : {'uniform', 'normal'}, default 'uniform'
    """

    def __init__(self, scale=1.414, rand_type="uniform"):
        if rand_type not in ("uniform", "normal"):
            raise ValueError(f"rand_type must be 'uniform' or 'normal', received {rand_type!r}")
        super().__init__(scale=scale, rand_type=rand_type)
        self.scale = scale
        self.rand_type = rand_type

    def _init_weight(self, _, arr):
        nout = arr.shape[0]
        nin = int(np.prod(arr.shape[1:]))
        if self.rand_type == "uniform":
            tmp = random.uniform(-1.0, 1.0, shape=(nout, nin))
        else:
            tmp = random.normal(0.0, 1.0, shape=(nout, nin))
        u, _, v = np.linalg.svd(tmp, full_matrices=False)  # pylint: disable=invalid-name
        res = u if u.shape == tmp.shape else v
        _assign(arr, self.scale * res.reshape(arr.shape))


@register
class Xavier(Initializer):
    """Xavier/Glorot initialisation.

    ``fan_in = shape[1]*hw``, ``fan_out = shape[0]*hw`` with ``hw`` the product
    of the kernel dims (``shape[2:]``, 1 for a matrix); the factor is their
    average, `fan_in` or `fan_out`; ``scale = sqrt(magnitude/factor)``; values
    from U(-scale, scale) ('uniform') or N(0, scale) ('gaussian').

    Parameters
    ----------
    rnd_type : {'uniform', 'gaussian'}, default 'uniform'
    factor_type : {'avg', 'in', 'out'}, default 'avg'
    magnitude : float, default 3
    """

    def __init__(self, rnd_type="uniform", factor_type="avg", magnitude=3):
        super().__init__(rnd_type=rnd_type, factor_type=factor_type, magnitude=magnitude)
        self.rnd_type = rnd_type
        self.factor_type = factor_type
        self.magnitude = float(magnitude)

    def _init_weight(self, name, arr):
        shape = arr.shape
        hw_scale = 1.
        if len(shape) < 2:
            raise ValueError(f'Xavier initializer cannot be applied to vector {name}. It requires'
                             ' at least 2D.')
        if len(shape) > 2:
            hw_scale = np.prod(shape[2:])
        fan_in, fan_out = shape[1] * hw_scale, shape[0] * hw_scale
        if self.factor_type == "avg":
            factor = (fan_in + fan_out) / 2.0
        elif self.factor_type == "in":
            factor = fan_in
        elif self.factor_type == "out":
            factor = fan_out
        else:
            raise ValueError("Incorrect factor type")
        scale = np.sqrt(self.magnitude / factor)
        if self.rnd_type == "uniform":
            random.uniform(-scale, scale, out=arr)
        elif self.rnd_type == "gaussian":
            random.normal(0, scale, out=arr)
        else:
            raise ValueError("Unknown random type")


@register
class MSRAPrelu(Xavier):
    """He/MSRA initialisation: ``Xavier('gaussian', factor_type, 2/(1 + slope**2))``.

    Parameters
    ----------
    factor_type : {'avg', 'in', 'out'}, default 'avg'
    slope : float, default 0.25
        Initial slope of the PReLU that follows.
    """

    def __init__(self, factor_type="avg", slope=0.25):
        magnitude = 2. / (1 + slope ** 2)
        super().__init__("gaussian", factor_type, magnitude)
        self._kwargs = {'factor_type': factor_type, 'slope': slope}


@register
class Bilinear(Initializer):
    """Bilinear upsampling kernel for a (C, 1, H, W) deconvolution weight."""

    def __init__(self):
        super().__init__()

    def _init_weight(self, _, arr):
        _assign(arr, _bilinear_kernel(arr.shape))


@register
class LSTMBias(Initializer):
    """LSTM i2h bias: zeros except the forget gate (rows [H:2H], H = len/4).

    Parameters
    ----------
    forget_bias : float, default 1.0
    """

    def __init__(self, forget_bias=1.0):
        super().__init__(forget_bias=forget_bias)
        self.forget_bias = forget_bias

    def _init_weight(self, name, arr):
        arr[...] = 0.0
        num_hidden = int(arr.shape[0] / 4)
        arr[num_hidden:2 * num_hidden] = self.forget_bias


# FusedRNN lives in its own module (it needs the RNN cells); registered with the rest.
from .initializer_rnn import FusedRNN  # noqa: E402,F401  pylint: disable=wrong-import-position
