"""`rm.metric`: evaluation metrics with MXNet 1.9.1's names, defaults and formulas.

Every metric keeps local statistics (reset by `reset_local`, e.g. by
Speedometer) and global ones (whole epoch), and can hand its sums to another
process: `get_state()` gives a dict of plain numbers, `merge_state(state)`
adds one in.

Deviations from MXNet 1.9.1 (all fix outright bugs): TopKAccuracy counts
1-D predictions in the global statistics too; PearsonCorrelation(average=
'micro').get_global() returns the correlation, not 0.0;
CompositeEvalMetric.get_metric raises for a bad index instead of returning
the exception; F1/MCC/Perplexity/PearsonCorrelation record `average` /
`axis` in `get_config()` so `create(config)` rebuilds them faithfully;
Perplexity accepts predictions of any rank.
"""
from .base import EvalMetric, MetricArgumentError, check_label_shapes
from .registry import alias, create, register
from .composite import CompositeEvalMetric
from .custom import CustomMetric, np_metric
from .classification import F1, MCC, PCC, Accuracy, TopKAccuracy
from .regression import MAE, MSE, RMSE, PearsonCorrelation
from .loss import Caffe, CrossEntropy, Loss, NegativeLogLikelihood, Perplexity, Torch

np = np_metric  # MXNet's name: `mx.metric.np(numpy_feval)`

__all__ = ["EvalMetric", "MetricArgumentError", "check_label_shapes", "alias", "create",
           "register", "CompositeEvalMetric", "CustomMetric", "np", "np_metric", "F1", "MCC",
           "PCC", "Accuracy", "TopKAccuracy", "MAE", "MSE", "RMSE", "PearsonCorrelation",
           "Caffe", "CrossEntropy", "Loss", "NegativeLogLikelihood", "Perplexity", "Torch"]
