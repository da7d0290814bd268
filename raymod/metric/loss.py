"""Likelihood and loss metrics: Perplexity, CrossEntropy, NegativeLogLikelihood, Loss."""
import math

import numpy as np

from .base import (EvalMetric, MetricArgumentError, _is_array, check_label_shapes,
                   on_one_device)
from .registry import alias, register


@register
class Perplexity(EvalMetric):
    """exp of the mean negative log-probability of the labels.

    Parameters
    ----------
    ignore_label : int or None
        Required (MXNet has no default, Q18). Labels equal to it are not
        counted.
    axis : int
        The class axis of the predictions (default: the last).

    Labels outside `[0, num_classes)` are clipped into it, as MXNet's
    `pick` does. Predictions of any rank work as long as there is one label
    per prediction row (MXNet accepts only matching 2-D shapes).
    """

    def __init__(self, ignore_label, axis=-1, name="perplexity", output_names=None,
                 label_names=None):
        super().__init__(name, ignore_label=ignore_label, axis=axis,
                         output_names=output_names, label_names=label_names,
                         has_global_stats=True)
        self.ignore_label = ignore_label
        self.axis = axis

    def update(self, labels, preds):
        if len(labels) != len(preds):
            raise MetricArgumentError(f"Perplexity: {len(labels)} labels for {len(preds)} "
                                      "predictions")
        loss = 0.0
        num = 0
        for label, pred in zip(labels, preds):
            if label.size != pred.size / pred.shape[-1]:
                raise MetricArgumentError(f"shape mismatch: {label.shape} vs. {pred.shape}")
            xp, label, pred = on_one_device(label, pred)
            label = label.reshape(label.size)
            rows = xp.moveaxis(pred, self.axis, -1).reshape(label.size, -1)
            index = xp.clip(label.astype(np.int64), 0, rows.shape[1] - 1)
            prob = xp.take_along_axis(rows, index[:, None], axis=1)[:, 0]
            if self.ignore_label is not None:
                ignore = (label == self.ignore_label).astype(prob.dtype)
                num -= int(ignore.sum())
                prob = prob * (1 - ignore) + ignore
            loss -= float(xp.sum(xp.log(xp.maximum(prob.dtype.type(1e-10), prob))))
            num += prob.size
        self.sum_metric += loss
        self.global_sum_metric += loss
        self.num_inst += num
        self.global_num_inst += num

    def get(self):
        if self.num_inst == 0:
            return (self.name, float("nan"))
        return (self.name, math.exp(self.sum_metric / self.num_inst))

    def get_global(self):
        if self.global_num_inst == 0:
            return (self.name, float("nan"))
        return (self.name, math.exp(self.global_sum_metric / self.global_num_inst))


class _LogLoss(EvalMetric):
    """Sum of -log(p[label] + eps) over samples, divided by the number of samples."""

    def __init__(self, eps, name, output_names, label_names):
        super().__init__(name, eps=eps, output_names=output_names, label_names=label_names,
                         has_global_stats=True)
        self.eps = eps

    def update(self, labels, preds):
        labels, preds = check_label_shapes(labels, preds, True)
        for label, pred in zip(labels, preds):
            xp, label, pred = on_one_device(label, pred)
            label = label.ravel()
            num = pred.shape[0]
            if label.shape[0] != num:
                raise MetricArgumentError(f"{type(self).__name__}: {label.shape[0]} labels "
                                          f"for {num} predictions")
            prob = pred[xp.arange(num), label.astype(np.int64)]
            value = float((-xp.log(prob + self.eps)).sum())
            self.sum_metric += value
            self.global_sum_metric += value
            self.num_inst += num
            self.global_num_inst += num


@register
@alias("ce")
class CrossEntropy(_LogLoss):
    """Cross-entropy of class probabilities against integer labels.

    Parameters
    ----------
    eps : float
        Added to each probability before the log.
    """

    def __init__(self, eps=1e-12, name="cross-entropy", output_names=None, label_names=None):
        super().__init__(eps, name, output_names, label_names)


@register
@alias("nll_loss")
class NegativeLogLikelihood(_LogLoss):
    """Negative log-likelihood of integer labels; the same formula as CrossEntropy."""

    def __init__(self, eps=1e-12, name="nll-loss", output_names=None, label_names=None):
        super().__init__(eps, name, output_names, label_names)


@register
class Loss(EvalMetric):
    """Mean of all elements of the outputs (for networks whose outputs are losses).

    Labels are ignored.
    """

    def __init__(self, name="loss", output_names=None, label_names=None):
        super().__init__(name, output_names=output_names, label_names=label_names,
                         has_global_stats=True)

    def update(self, _, preds):
        if _is_array(preds):
            preds = [preds]
        for pred in preds:
            xp, _, pred = on_one_device(pred, pred)
            loss = float(xp.sum(pred))
            self.sum_metric += loss
            self.global_sum_metric += loss
            self.num_inst += pred.size
            self.global_num_inst += pred.size


@register
class Torch(Loss):
    """`Loss` under the name 'torch'."""

    def __init__(self, name="torch", output_names=None, label_names=None):
        super().__init__(name, output_names=output_names, label_names=label_names)


@register
class Caffe(Loss):
    """`Loss` under the name 'caffe'."""

    def __init__(self, name="caffe", output_names=None, label_names=None):
        super().__init__(name, output_names=output_names, label_names=label_names)
