"""`CustomMetric` (a metric from a function of numpy arrays) and the `np` decorator."""
import numpy as np

from .base import EvalMetric, check_label_shapes, host
from .registry import register


@register
class CustomMetric(EvalMetric):
    """A metric computed by `feval(label, pred)` on numpy copies of each output.

    `feval` returns either a number (added to the sum; the count grows by
    one) or a tuple `(sum, count)`.

    Parameters
    ----------
    feval : callable
    name : str, optional
        Default: `feval.__name__`, or `custom(<lambda>)` for a lambda.
    allow_extra_outputs : bool
        Skip the check that there are as many labels as outputs.
    """

    def __init__(self, feval, name=None, allow_extra_outputs=False,
                 output_names=None, label_names=None):
        if not callable(feval):
            raise TypeError(f"CustomMetric: feval must be callable, received "
                            f"{type(feval).__name__}")
        if name is None:
            name = feval.__name__
            if "<" in name:
                name = f"custom({name})"
        super().__init__(name, feval=feval, allow_extra_outputs=allow_extra_outputs,
                         output_names=output_names, label_names=label_names,
                         has_global_stats=True)
        self._feval = feval
        self._allow_extra_outputs = allow_extra_outputs

    def update(self, labels, preds):
        if not self._allow_extra_outputs:
            labels, preds = check_label_shapes(labels, preds, True)
        for pred, label in zip(preds, labels):
            # copies, as MXNet's asnumpy(): feval may modify them
            reval = self._feval(np.array(host(label)), np.array(host(pred)))
            if isinstance(reval, tuple):
                sum_metric, num_inst = reval
            else:
                sum_metric, num_inst = reval, 1
            self.sum_metric += sum_metric
            self.global_sum_metric += sum_metric
            self.num_inst += num_inst
            self.global_num_inst += num_inst

    def get_config(self):
        raise NotImplementedError("CustomMetric cannot be serialized")


def np_metric(numpy_feval, name=None, allow_extra_outputs=False):
    """A `CustomMetric` from a function of numpy arrays (MXNet's `mx.metric.np`)."""
    def feval(label, pred):
        return numpy_feval(label, pred)
    feval.__name__ = numpy_feval.__name__
    return CustomMetric(feval, name, allow_extra_outputs)
