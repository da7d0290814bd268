"""Regression metrics: MAE, MSE, RMSE (per update-call means) and PearsonCorrelation."""
import numpy as np

from .base import EvalMetric, check_label_shapes, host, on_one_device, plain_number
from .registry import alias, register


class _ErrorMetric(EvalMetric):
    """A per-output error averaged over update calls: `sum_metric += error`, `num_inst += 1`.

    1-D labels and predictions are reshaped to (N, 1) first, then numpy
    broadcasting applies, as in MXNet. The value therefore depends on how a
    batch is split into calls (per device inside Module, quirk Q4).
    """

    def __init__(self, name, output_names, label_names):
        super().__init__(name, output_names=output_names, label_names=label_names,
                         has_global_stats=True)

    def _error(self, xp, diff):
        raise NotImplementedError

    def update(self, labels, preds):
        labels, preds = check_label_shapes(labels, preds, True)
        for label, pred in zip(labels, preds):
            xp, label, pred = on_one_device(label, pred)
            if label.ndim == 1:
                label = label.reshape(label.shape[0], 1)
            if pred.ndim == 1:
                pred = pred.reshape(pred.shape[0], 1)
            error = float(self._error(xp, label - pred))
            self.sum_metric += error
            self.global_sum_metric += error
            self.num_inst += 1
            self.global_num_inst += 1


@register
class MAE(_ErrorMetric):
    """Mean absolute error, averaged over update calls."""

    def __init__(self, name="mae", output_names=None, label_names=None):
        super().__init__(name, output_names, label_names)

    def _error(self, xp, diff):
        return xp.abs(diff).mean()


@register
class MSE(_ErrorMetric):
    """Mean squared error, averaged over update calls."""

    def __init__(self, name="mse", output_names=None, label_names=None):
        super().__init__(name, output_names, label_names)

    def _error(self, xp, diff):
        return (diff ** 2.0).mean()


@register
class RMSE(_ErrorMetric):
    """Root mean squared error of each update call, averaged over calls."""

    def __init__(self, name="rmse", output_names=None, label_names=None):
        super().__init__(name, output_names, label_names)

    def _error(self, xp, diff):
        return xp.sqrt((diff ** 2.0).mean())


_MICRO_KEYS = ("label_nums", "mean_l", "sse_l", "pred_nums", "mean_p", "sse_p", "conv")


@register
@alias("pearsonr")
class PearsonCorrelation(EvalMetric):
    """Pearson correlation of predictions and labels.

    Parameters
    ----------
    average : {'macro', 'micro'}
        'macro': the mean of each update's `corrcoef`; 'micro': the
        correlation of all values seen, from running (Welford) sums.

    In 'micro' mode `get_global()` returns the running correlation (MXNet
    1.9.1 returns 0.0 there, a bug), and `reset_local()` keeps the running
    sums, as in MXNet.
    """

    def __init__(self, name="pearsonr", output_names=None, label_names=None, average="macro"):
        if average not in ("macro", "micro"):
            raise ValueError(f"PearsonCorrelation: average must be 'macro' or 'micro', "
                             f"received {average!r}")
        self.average = average
        super().__init__(name, output_names=output_names, label_names=label_names,
                         average=average, has_global_stats=True)

    def reset_micro(self):
        for key in _MICRO_KEYS:
            setattr(self, "_" + key, 0.0 if "num" not in key else 0)

    def reset(self):
        super().reset()
        if self.average == "micro":
            self.reset_micro()

    @staticmethod
    def _update_variance(values, count, mean, m_2):
        count += len(values)
        delta = values - mean
        mean += np.sum(delta / count)
        m_2 += np.sum(delta * (values - mean))
        return count, mean, m_2

    def update(self, labels, preds):
        labels, preds = check_label_shapes(labels, preds, True)
        for label, pred in zip(labels, preds):
            check_label_shapes(label, pred, False, True)
            label = host(label).ravel().astype(np.float64)
            pred = host(pred).ravel().astype(np.float64)
            self.num_inst += 1
            self.global_num_inst += 1
            if self.average == "macro":
                corr = float(np.corrcoef(pred, label)[0, 1])
                self.sum_metric += corr
                self.global_sum_metric += corr
                continue
            self._label_nums, self._mean_l, self._sse_l = self._update_variance(
                label, self._label_nums, self._mean_l, self._sse_l)
            # the label mean is already updated, the prediction mean not yet (online covariance)
            self._conv = self._conv + np.sum((label - self._mean_l) * (pred - self._mean_p))
            self._pred_nums, self._mean_p, self._sse_p = self._update_variance(
                pred, self._pred_nums, self._mean_p, self._sse_p)

    def _micro_value(self):
        n = np.float64(self._label_nums)
        return float(self._conv / ((n - 1) * np.sqrt(self._sse_p / (n - 1))
                                   * np.sqrt(self._sse_l / (n - 1))))

    def get(self):
        if self.num_inst == 0:
            return (self.name, float("nan"))
        if self.average == "macro":
            return (self.name, self.sum_metric / self.num_inst)
        return (self.name, self._micro_value())

    def get_global(self):
        if self.average == "macro":
            return super().get_global()
        if self.global_num_inst == 0:
            return (self.name, float("nan"))
        return (self.name, self._micro_value())

    def get_state(self):
        state = super().get_state()
        if self.average == "micro":
            state.update({key: plain_number(getattr(self, "_" + key)) for key in _MICRO_KEYS})
        return state

    def merge_state(self, state):
        super().merge_state(state)  # checks the keys, adds the four sums
        if self.average == "micro":
            self._merge_running(state)

    def _merge_running(self, other):
        """Chan et al.'s pairwise combination of running means and co-moments."""
        na, nb = self._label_nums, other["label_nums"]
        n = na + nb
        if nb == 0:
            return
        d_l = other["mean_l"] - self._mean_l
        d_p = other["mean_p"] - self._mean_p
        self._conv = self._conv + other["conv"] + d_l * d_p * na * nb / n
        self._sse_l = self._sse_l + other["sse_l"] + d_l * d_l * na * nb / n
        self._sse_p = self._sse_p + other["sse_p"] + d_p * d_p * na * nb / n
        self._mean_l = self._mean_l + d_l * nb / n
        self._mean_p = self._mean_p + d_p * nb / n
        self._label_nums = n
        self._pred_nums = self._pred_nums + other["pred_nums"]
