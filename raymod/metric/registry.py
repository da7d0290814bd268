"""The metric registry: `register`, `alias`, and `create` (strings, configs, callables, lists)."""
from ..registry import Registry
from .base import EvalMetric, MetricArgumentError

_registry = Registry(EvalMetric, "metric", error=MetricArgumentError,
                     type_error=MetricArgumentError)
_REGISTRY = _registry.entries  # lower-cased name -> EvalMetric subclass
register = _registry.register
alias = _registry.alias


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
    return _registry.create(metric, *args, **kwargs)
