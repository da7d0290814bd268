"""Classification metrics: Accuracy, TopKAccuracy, F1, MCC, PCC (MXNet 1.9.1 formulas)."""
import math

import numpy as np

from .base import (EvalMetric, MetricArgumentError, check_label_shapes, host, on_one_device,
                   plain_number)
from .registry import alias, register


@register
@alias("acc")
class Accuracy(EvalMetric):
    """Fraction of predictions equal to the label.

    When a prediction's shape differs from its label's, the predicted class
    is its argmax along `axis`. Both are cast to int32 and flattened.

    Parameters
    ----------
    axis : int
        The class axis of the predictions.
    """

    def __init__(self, axis=1, name="accuracy", output_names=None, label_names=None):
        super().__init__(name, axis=axis, output_names=output_names, label_names=label_names,
                         has_global_stats=True)
        self.axis = axis

    def update(self, labels, preds):
        labels, preds = check_label_shapes(labels, preds, True)
        for label, pred in zip(labels, preds):
            xp, label, pred = on_one_device(label, pred)
            if pred.shape != label.shape:
                pred = xp.argmax(pred, axis=self.axis).ravel()   # exact in any int type
            else:
                pred = pred.astype(np.int32).ravel()
            label = label.astype(np.int32).ravel()
            check_label_shapes(label, pred)
            correct = int(xp.count_nonzero(pred == label))
            self.sum_metric += correct
            self.global_sum_metric += correct
            self.num_inst += len(pred)
            self.global_num_inst += len(pred)


@register
@alias("top_k_accuracy", "top_k_acc")
class TopKAccuracy(EvalMetric):
    """Fraction of samples whose label is among the `top_k` highest predictions.

    Parameters
    ----------
    top_k : int
        Must be > 1 (use Accuracy for 1). The metric's name gets `_<top_k>`.
    """

    def __init__(self, top_k=1, name="top_k_accuracy", output_names=None, label_names=None):
        super().__init__(name, top_k=top_k, output_names=output_names,
                         label_names=label_names, has_global_stats=True)
        self.top_k = top_k
        if not top_k > 1:
            raise MetricArgumentError("Please use Accuracy if top_k is no more than 1")
        self.name += f"_{self.top_k}"

    def update(self, labels, preds):
        labels, preds = check_label_shapes(labels, preds, True)
        for label, pred in zip(labels, preds):
            if len(pred.shape) > 2:
                raise MetricArgumentError(f"Predictions should be no more than 2 dims, "
                                          f"received shape {pred.shape}")
            # on the host, like MXNet: argpartition's choice among ties must match numpy's
            pred = np.argpartition(host(pred).astype(np.float32), -self.top_k)
            label = host(label).astype(np.int32)
            check_label_shapes(label, pred)
            num_samples = pred.shape[0]
            correct = 0
            if pred.ndim == 1:
                # MXNet adds this case to the local sum only; raymod counts it globally too
                correct = int((pred.ravel() == label.ravel()).sum())
            elif pred.ndim == 2:
                num_classes = pred.shape[1]
                for j in range(min(num_classes, self.top_k)):
                    correct += int((pred[:, num_classes - 1 - j].ravel() == label.ravel()).sum())
            self.sum_metric += correct
            self.global_sum_metric += correct
            self.num_inst += num_samples
            self.global_num_inst += num_samples


_COUNTS = ("true_positives", "false_positives", "false_negatives", "true_negatives")


class _BinaryClassificationMetrics:
    """Confusion counts of a binary classifier, local and global (positive class = 1)."""

    def __init__(self):
        self.reset_stats()

    def update_binary_stats(self, label, pred):
        xp, label, pred = on_one_device(label, pred)
        label = label.astype(np.int32)
        pred_label = xp.argmax(pred, axis=1)
        check_label_shapes(label, pred)
        if len(xp.unique(label)) > 2:
            raise ValueError(f"{self._owner} currently only supports binary classification.")
        pred_true = pred_label == 1
        label_true = label == 1
        counts = {"true_positives": pred_true & label_true,
                  "false_positives": pred_true & ~label_true,
                  "false_negatives": ~pred_true & label_true,
                  "true_negatives": ~pred_true & ~label_true}
        for key, mask in counts.items():
            n = int(mask.sum())
            setattr(self, key, getattr(self, key) + n)
            setattr(self, "global_" + key, getattr(self, "global_" + key) + n)

    _owner = "F1"

    def counts(self, use_global):
        prefix = "global_" if use_global else ""
        return [getattr(self, prefix + key) for key in _COUNTS]

    def total_examples(self, use_global=False):
        return sum(self.counts(use_global))

    def fscore(self, use_global=False):
        tp, fp, fn, _ = self.counts(use_global)
        precision = float(tp) / (tp + fp) if tp + fp > 0 else 0.0
        recall = float(tp) / (tp + fn) if tp + fn > 0 else 0.0
        if precision + recall > 0:
            return 2 * precision * recall / (precision + recall)
        return 0.0

    def matthewscc(self, use_global=False):
        if not self.total_examples(use_global):
            return 0.0
        tp, fp, fn, tn = (float(c) for c in self.counts(use_global))
        denom = 1.0
        for term in (tp + fp, tp + fn, tn + fp, tn + fn):
            if term != 0.0:  # a zero factor is left out, as in MXNet
                denom *= term
        return (tp * tn - fp * fn) / math.sqrt(denom)

    def local_reset_stats(self):
        for key in _COUNTS:
            setattr(self, key, 0)

    def reset_stats(self):
        for key in _COUNTS:
            setattr(self, key, 0)
            setattr(self, "global_" + key, 0)

    def state(self):
        return {prefix + key: getattr(self, prefix + key)
                for prefix in ("", "global_") for key in _COUNTS}


class _BinaryMetric(EvalMetric):
    """F1 and MCC: a score of the confusion counts, per update call (macro) or running (micro)."""

    def __init__(self, name, output_names, label_names, average):
        if average not in ("macro", "micro"):
            raise ValueError(f"{type(self).__name__}: average must be 'macro' or 'micro', "
                             f"received {average!r}")
        self.average = average
        self._metrics = _BinaryClassificationMetrics()
        self._metrics._owner = type(self).__name__
        super().__init__(name, output_names=output_names, label_names=label_names,
                         average=average, has_global_stats=True)

    def _score(self, use_global):
        raise NotImplementedError

    def update(self, labels, preds):
        labels, preds = check_label_shapes(labels, preds, True)
        for label, pred in zip(labels, preds):
            self._metrics.update_binary_stats(label, pred)
        if self.average == "macro":
            self.sum_metric += self._score(False)
            self.global_sum_metric += self._score(True)
            self.num_inst += 1
            self.global_num_inst += 1
            self._metrics.reset_stats()
        else:
            self._sync_micro()

    def _sync_micro(self):
        self.sum_metric = self._score(False) * self._metrics.total_examples(False)
        self.global_sum_metric = self._score(True) * self._metrics.total_examples(True)
        self.num_inst = self._metrics.total_examples(False)
        self.global_num_inst = self._metrics.total_examples(True)

    def reset(self):
        super().reset()
        self._metrics.reset_stats()

    def reset_local(self):
        super().reset_local()
        self._metrics.local_reset_stats()

    def get_state(self):
        state = super().get_state()
        state.update(self._metrics.state())
        return state

    def merge_state(self, state):
        self._check_state(state)
        for key in self._metrics.state():
            setattr(self._metrics, key, getattr(self._metrics, key) + state[key])
        if self.average == "macro":  # counts are zero between calls; the sums add up
            for key in self._state_keys:
                setattr(self, key, getattr(self, key) + state[key])
        else:  # the running counts add up; the sums follow from them
            self._sync_micro()


@register
class F1(_BinaryMetric):
    """F1 score of a binary classifier (positive class 1; predictions are class scores).

    Parameters
    ----------
    average : {'macro', 'micro'}
        'macro': the mean of each update call's F1; 'micro': F1 of all counts.
    """

    def __init__(self, name="f1", output_names=None, label_names=None, average="macro"):
        super().__init__(name, output_names, label_names, average)

    @property
    def metrics(self):
        """The confusion counts (MXNet's attribute name for F1)."""
        return self._metrics

    def _score(self, use_global):
        return self._metrics.fscore(use_global)


@register
class MCC(_BinaryMetric):
    """Matthews correlation coefficient of a binary classifier.

    Parameters
    ----------
    average : {'macro', 'micro'}
        As for `F1`.
    """

    def __init__(self, name="mcc", output_names=None, label_names=None, average="macro"):
        super().__init__(name, output_names, label_names, average)

    def _score(self, use_global):
        return self._metrics.matthewscc(use_global)


@register
class PCC(EvalMetric):
    """Multi-class Matthews correlation (Pearson correlation of the confusion matrix).

    The confusion matrices (local and global) grow as new classes appear;
    `num_inst` counts update calls.
    """

    def __init__(self, name="pcc", output_names=None, label_names=None,
                 has_global_stats=True):
        self.k = 2
        super().__init__(name=name, output_names=output_names, label_names=label_names,
                         has_global_stats=has_global_stats)

    def _grow(self, inc):
        self.lcm = np.pad(self.lcm, ((0, inc), (0, inc)), "constant", constant_values=0)
        self.gcm = np.pad(self.gcm, ((0, inc), (0, inc)), "constant", constant_values=0)
        self.k += inc

    @staticmethod
    def _calc_mcc(cmat):
        n = cmat.sum()
        x = cmat.sum(axis=1)
        y = cmat.sum(axis=0)
        cov_xx = np.sum(x * (n - x))
        cov_yy = np.sum(y * (n - y))
        if cov_xx == 0 or cov_yy == 0:
            return float("nan")
        cov_xy = np.sum(cmat.diagonal() * n - x * y)
        return float(cov_xy / (cov_xx * cov_yy) ** 0.5)

    def update(self, labels, preds):
        labels, preds = check_label_shapes(labels, preds, True)
        for label, pred in zip(labels, preds):
            label = host(label).astype(np.int32)
            pred = host(pred)
            pred = pred.argmax(axis=1) if pred.shape != label.shape else pred.astype(np.int32)
            pred, label = pred.ravel(), label.ravel()
            check_label_shapes(label, pred)
            n = max(pred.max(), label.max()) if label.size else 0
            if n >= self.k:
                self._grow(int(n) + 1 - self.k)
            bcm = np.zeros((self.k, self.k))
            np.add.at(bcm, (pred, label), 1)
            self.lcm += bcm
            self.gcm += bcm
        self.num_inst += 1
        self.global_num_inst += 1

    @property
    def sum_metric(self):
        return self._calc_mcc(self.lcm) * self.num_inst

    @property
    def global_sum_metric(self):
        return self._calc_mcc(self.gcm) * self.global_num_inst

    def reset(self):
        self.global_num_inst = 0
        self.gcm = np.zeros((self.k, self.k))
        self.reset_local()

    def reset_local(self):
        self.num_inst = 0
        self.lcm = np.zeros((self.k, self.k))

    def get_state(self):
        return {"num_inst": self.num_inst, "global_num_inst": self.global_num_inst,
                "lcm": self.lcm.tolist(), "gcm": self.gcm.tolist()}

    def merge_state(self, state):
        self._check_state(state)
        lcm, gcm = np.asarray(state["lcm"], dtype=float), np.asarray(state["gcm"], dtype=float)
        if lcm.shape[0] > self.k:
            self._grow(lcm.shape[0] - self.k)
        k = lcm.shape[0]
        self.lcm[:k, :k] += lcm
        self.gcm[:k, :k] += gcm
        self.num_inst += plain_number(state["num_inst"])
        self.global_num_inst += plain_number(state["global_num_inst"])
