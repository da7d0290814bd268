"""`TrainingHistory`: every epoch's train and validation metrics and times, kept by `fit`.

`mod.fit(...)` returns it and leaves it as `mod.history`. It writes itself as
CSV or JSON lines (`save`), to a local path or an fsspec URL, and reads
either back (`TrainingHistory.load`) for `python -m raymod.plot`.

CSV columns: ``epoch``, ``train_time``, ``val_time`` (seconds; empty without
validation data), then ``train-<metric>`` and ``val-<metric>`` for each
metric name, in the order the metrics reported them. A JSON-lines file has
one object per epoch: ``{"epoch": 0, "train": {...}, "val": {...},
"train_time": 0.41, "val_time": 0.05}``.
"""
import csv
import io
import json
import math
from dataclasses import dataclass, field

from .fileio import atomic_write_text, read_bytes

__all__ = ["EpochRecord", "TrainingHistory"]

_FORMATS = ("csv", "jsonl")


@dataclass
class EpochRecord:
    """One epoch of a fit.

    Attributes
    ----------
    epoch : int
        The epoch's number (0-based, as `fit` logs it: ``Epoch[0]``).
    train : dict of str to float
        The training metric over the whole epoch (``get_global_name_value``).
    val : dict of str to float
        The validation metric after the epoch; empty without `eval_data`.
    train_time : float
        Seconds spent training the epoch (its batches and the metric read).
    val_time : float or None
        Seconds spent scoring `eval_data`; None without it.
    """

    epoch: int
    train: dict = field(default_factory=dict)
    val: dict = field(default_factory=dict)
    train_time: float = 0.0
    val_time: float = None

    def as_json(self):
        return {"epoch": self.epoch, "train": dict(self.train), "val": dict(self.val),
                "train_time": self.train_time, "val_time": self.val_time}


class TrainingHistory:
    """The epochs of one `fit` call, in order.

    Examples
    --------
    >>> history = mod.fit(train, eval_data=val, num_epoch=10)
    >>> history.metric("accuracy", "val")      # one value per epoch
    >>> history.save("runs/mlp-history.csv")   # or .jsonl; local path or URL
    """

    def __init__(self, records=()):
        self.records = list(records)

    def __len__(self):
        return len(self.records)

    def __iter__(self):
        return iter(self.records)

    def __getitem__(self, index):
        return self.records[index]

    def __repr__(self):
        return f"TrainingHistory({len(self.records)} epochs, metrics {self.metric_names()})"

    def append(self, record):
        """Add one `EpochRecord` (fit does this after each epoch)."""
        if not isinstance(record, EpochRecord):
            raise TypeError(f"record must be an EpochRecord, received {type(record).__name__}")
        self.records.append(record)

    @property
    def epochs(self):
        """The epoch numbers, in order."""
        return [r.epoch for r in self.records]

    def metric_names(self, split="train"):
        """Metric names seen in `split` ('train' or 'val'), in first-seen order."""
        _check_split(split)
        names = {}
        for record in self.records:
            names.update(dict.fromkeys(getattr(record, split)))
        return list(names)

    def metric(self, name, split="train"):
        """`name`'s value for every epoch of `split` ('train' or 'val'); nan where missing."""
        _check_split(split)
        return [getattr(r, split).get(name, math.nan) for r in self.records]

    # ------------------------------------------------------------------ files
    def columns(self):
        """The CSV header: epoch, train_time, val_time, train-<metric>..., val-<metric>..."""
        return (["epoch", "train_time", "val_time"]
                + [f"train-{n}" for n in self.metric_names("train")]
                + [f"val-{n}" for n in self.metric_names("val")])

    def to_csv(self):
        """The history as CSV text (one row per epoch, `columns()` as the header)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.columns())
        train_names, val_names = self.metric_names("train"), self.metric_names("val")
        for r in self.records:
            writer.writerow([r.epoch, _fmt(r.train_time), _fmt(r.val_time)]
                            + [_fmt(r.train.get(n)) for n in train_names]
                            + [_fmt(r.val.get(n)) for n in val_names])
        return out.getvalue()

    def to_jsonl(self):
        """The history as JSON lines (one object per epoch)."""
        return "".join(json.dumps(r.as_json()) + "\n" for r in self.records)

    def save(self, fname, format=None):  # noqa: A002  (the natural name here)
        """Write the history to `fname` (path or fsspec URL), atomically.

        Parameters
        ----------
        fname : str
            Destination; ``.csv`` means CSV, ``.jsonl``/``.json`` JSON lines.
        format : {'csv', 'jsonl'}, optional
            Overrides the guess from the extension.
        """
        fmt = _format_of(fname, format)
        atomic_write_text(fname, self.to_csv() if fmt == "csv" else self.to_jsonl())

    @classmethod
    def load(cls, fname, format=None):  # noqa: A002
        """A history read back from a file written by `save` (CSV or JSON lines)."""
        fmt = _format_of(fname, format)
        text = read_bytes(fname).decode("utf-8")
        if fmt == "jsonl":
            return cls(_record_from_json(json.loads(line), fname, i)
                       for i, line in enumerate(text.splitlines()) if line.strip())
        return cls(_records_from_csv(text, fname))


def _check_split(split):
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', received {split!r}")


def _fmt(value):
    return "" if value is None else repr(float(value))


def _format_of(fname, format):  # noqa: A002
    if format is not None:
        if format not in _FORMATS:
            raise ValueError(f"format must be one of {_FORMATS}, received {format!r}")
        return format
    name = str(fname).lower()
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".jsonl", ".json")):
        return "jsonl"
    raise ValueError(f"cannot tell the history format of {fname!r}: name it .csv or .jsonl, "
                     f"or pass format='csv' or 'jsonl'")


def _record_from_json(obj, fname, line):
    try:
        return EpochRecord(epoch=int(obj["epoch"]), train=dict(obj.get("train", {})),
                           val=dict(obj.get("val", {})),
                           train_time=float(obj.get("train_time", 0.0)),
                           val_time=obj.get("val_time"))
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{fname}: line {line + 1} is not a history record: {err}") from None


def _records_from_csv(text, fname):
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or rows[0][:3] != ["epoch", "train_time", "val_time"]:
        raise ValueError(f"{fname}: not a training history CSV (expected a header starting "
                         f"epoch,train_time,val_time; found {rows[0][:3] if rows else 'nothing'})")
    header = rows[0]
    records = []
    for lineno, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise ValueError(f"{fname}: line {lineno} has {len(row)} fields, the header "
                             f"{len(header)}")
        cells = dict(zip(header, row, strict=True))
        record = EpochRecord(epoch=int(cells["epoch"]),
                             train_time=float(cells["train_time"] or 0.0),
                             val_time=float(cells["val_time"]) if cells["val_time"] else None)
        for column, value in cells.items():
            split, _, name = column.partition("-")
            if name and split in ("train", "val") and value != "":
                getattr(record, split)[name] = float(value)
        records.append(record)
    return records
