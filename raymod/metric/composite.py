"""`CompositeEvalMetric`: several metrics updated together."""
from .base import EvalMetric
from .registry import alias, create, register


@register
@alias("composite")
class CompositeEvalMetric(EvalMetric):
    """Manage several metrics as one: updates and resets fan out, `get()` lists them all.

    Parameters
    ----------
    metrics : list, optional
        Anything `create` accepts, one per child metric.
    name : str
    output_names, label_names : list of str, optional
        `update_dict` keeps only these outputs/labels before handing them
        to each child's `update_dict`.
    """

    def __init__(self, metrics=None, name="composite", output_names=None, label_names=None):
        super().__init__(name, output_names=output_names, label_names=label_names,
                         has_global_stats=True)
        self.metrics = [create(m) for m in (metrics or [])]

    def add(self, metric):
        """Append a child metric (anything `create` accepts)."""
        self.metrics.append(create(metric))

    def get_metric(self, index):
        """The child metric at `index`."""
        try:
            return self.metrics[index]
        except IndexError:
            raise ValueError(f"Metric index {index} is out of range 0 and "
                             f"{len(self.metrics)}") from None

    def update_dict(self, labels, preds):
        if self.label_names is not None:
            labels = {k: v for k, v in labels.items() if k in self.label_names}
        if self.output_names is not None:
            preds = {k: v for k, v in preds.items() if k in self.output_names}
        for metric in self.metrics:
            metric.update_dict(labels, preds)

    def update(self, labels, preds):
        for metric in self.metrics:
            metric.update(labels, preds)

    def reset(self):
        for metric in getattr(self, "metrics", ()):  # the base __init__ resets before metrics exist
            metric.reset()

    def reset_local(self):
        for metric in self.metrics:
            metric.reset_local()

    def get(self):
        return _gather(m.get() for m in self.metrics)

    def get_global(self):
        return _gather(m.get_global() for m in self.metrics)

    def get_config(self):
        config = super().get_config()
        config["metrics"] = [m.get_config() for m in self.metrics]
        return config

    def get_state(self):
        """`{'metrics': [state of each child]}`."""
        return {"metrics": [m.get_state() for m in self.metrics]}

    def merge_state(self, state):
        if not isinstance(state, dict) or set(state) != {"metrics"} \
                or len(state["metrics"]) != len(self.metrics):
            raise ValueError(f"CompositeEvalMetric.merge_state expects {{'metrics': [...]}} "
                             f"with {len(self.metrics)} child states")
        for metric, child in zip(self.metrics, state["metrics"], strict=True):
            metric.merge_state(child)


def _gather(pairs):
    names, values = [], []
    for name, value in pairs:
        names.extend(name if isinstance(name, list) else [name])
        values.extend(value if isinstance(value, list) else [value])
    return names, values
