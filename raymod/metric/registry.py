"""The metric registry: `register`, `alias`, and `create` (strings, configs, callables, lists)."""
import json
import warnings

from .base import EvalMetric, MetricArgumentError

_REGISTRY = {}  # lower-cased name -> EvalMetric subclass


def register(klass, name=None):
    """Register `klass` under `name` (default: its class name), lower-cased."""
    if not (isinstance(klass, type) and issubclass(klass, EvalMetric)):
        raise TypeError(f"Can only register subclass of EvalMetric, received {klass!r}")
    name = (klass.__name__ if name is None else name).lower()
    if name in _REGISTRY and _REGISTRY[name] is not klass:
        warnings.warn(f"New metric {klass.__module__}.{klass.__name__} registered with name "
                      f"{name} is overriding existing metric {_REGISTRY[name].__module__}."
                      f"{_REGISTRY[name].__name__}", UserWarning, stacklevel=2)
    _REGISTRY[name] = klass
    return klass


def alias(*aliases):
    """Class decorator registering the class under each of `aliases`."""
    def reg(klass):
        for name in aliases:
            register(klass, name)
        return klass
    return reg


def _create_registered(*args, **kwargs):
    """MXNet's registry create: an instance, a config dict, a JSON string or a name."""
    if args:
        name, args = args[0], args[1:]
    elif "metric" in kwargs:
        name = kwargs.pop("metric")
    else:
        raise TypeError("create() needs a metric: a name, config, callable, list or EvalMetric")
    if isinstance(name, EvalMetric):
        if args or kwargs:
            raise MetricArgumentError("metric is already an instance. Additional arguments "
                                      "are invalid")
        return name
    if isinstance(name, dict):
        return _create_registered(**name)
    if not isinstance(name, str):
        raise MetricArgumentError(f"metric must be of string type, received "
                                  f"{type(name).__name__}")
    if name.startswith("["):
        if args or kwargs:
            raise MetricArgumentError("a JSON metric spec takes no further arguments")
        name, kwargs = json.loads(name)
        return _create_registered(name, **kwargs)
    if name.startswith("{"):
        if args or kwargs:
            raise MetricArgumentError("a JSON metric spec takes no further arguments")
        return _create_registered(**json.loads(name))
    name = name.lower()
    if name not in _REGISTRY:
        raise MetricArgumentError(f"{name} is not registered. Please register with "
                                  f"metric.register first (known: {sorted(_REGISTRY)})")
    return _REGISTRY[name](*args, **kwargs)


def create(metric, *args, **kwargs):
    """Make a metric from a name, a config dict, a callable, an EvalMetric or a list of them.

    Parameters
    ----------
    metric : str, dict, callable, EvalMetric or list
        A callable `feval(label, pred)` becomes a `CustomMetric`; a list
        becomes a `CompositeEvalMetric` of `create(item)` for each item;
        a name is looked up lower-cased ('acc', 'ce', 'top_k_accuracy', ...).
    *args, **kwargs
        Passed to the metric's constructor.
    """
    from .composite import CompositeEvalMetric  # these modules import this one
    from .custom import CustomMetric
    if callable(metric):
        return CustomMetric(metric, *args, **kwargs)
    if isinstance(metric, list):
        composite = CompositeEvalMetric()
        for child in metric:
            composite.add(create(child, *args, **kwargs))
        return composite
    return _create_registered(metric, *args, **kwargs)
