"""Is Speedometer's reported speed the real one? Reported over real, per placement.

    python bench/speedometer.py [--placement ray in_process] [--epochs 2] [--frequent 8]

Fits an MLP (512-1024x4-2, batch 64, 64 batches an epoch) with
`rm.callback.Speedometer` and, in the same run as the baseline, with a copy
that reads the clock before the metric and restarts its timer after logging
(MXNet's order). The real speed of an interval is the samples between two
logged lines over the time between them (the log records' timestamps); the
ratio printed is reported / real, the median over the intervals after the
first epoch. On Ray the driver only queues batches and reading the metric
waits for them, so MXNet's order reports the queueing rate there.
"""
import argparse
import logging
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import raymod as rm  # noqa: E402
from raymod import callback  # noqa: E402

BATCH, SAMPLES, FEATURES, HIDDEN = 64, 4096, 512, 1024


class ClockFirstSpeedometer(callback.Speedometer):
    """The baseline: MXNet's order (clock, then metric; timer restarted after logging)."""

    def __call__(self, param):
        count = param.nbatch
        if self.last_count > count:
            self.init = False
        self.last_count = count
        if not self.init:
            self.init, self.tic = True, time.time()
            return
        if count % self.frequent != 0:
            return
        speed = self.frequent * self.batch_size / (time.time() - self.tic)
        param.eval_metric.get_name_value()
        param.eval_metric.reset_local()
        logging.info("Epoch[%d] Batch [%d-%d]\tSpeed: %.2f samples/sec", param.epoch,
                     count - self.frequent, count, speed)
        self.tic = time.time()


class SpeedLines(logging.Handler):
    """(epoch, time logged, reported samples/s) of every Speedometer line."""

    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        found = re.search(r"Epoch\[(\d+)\] Batch \[\d+-\d+\]\tSpeed: ([0-9.]+)",
                          record.getMessage())
        if found:
            self.lines.append((int(found.group(1)), record.created, float(found.group(2))))

    def ratios(self, samples_per_line, from_epoch):
        pairs = zip(self.lines, self.lines[1:])
        return [reported / (samples_per_line / (t1 - t0))
                for (e0, t0, _), (e1, t1, reported) in pairs
                if e0 == e1 >= from_epoch and t1 > t0]


def _net():
    x = rm.sym.Variable("data")
    for i in range(4):
        x = rm.sym.Activation(rm.sym.FullyConnected(x, num_hidden=HIDDEN, name=f"fc{i}"),
                              act_type="relu")
    return rm.sym.SoftmaxOutput(rm.sym.FullyConnected(x, num_hidden=2, name="out"),
                                name="softmax")


def measure(placement, speedometer, epochs, frequent):
    """Median reported/real speed ratio of one fit."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((SAMPLES, FEATURES)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)
    lines = SpeedLines()
    root = logging.getLogger()
    root.addHandler(lines)
    try:
        mod = rm.mod.Module(_net(), placement=placement)
        mod.fit(rm.io.NDArrayIter(x, y, batch_size=BATCH), num_epoch=epochs,
                batch_end_callback=speedometer(BATCH, frequent=frequent))
    finally:
        root.removeHandler(lines)
    return statistics.median(lines.ratios(frequent * BATCH, from_epoch=min(1, epochs - 1)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--placement", nargs="+", default=["ray", "in_process"])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--frequent", type=int, default=8)
    args = parser.parse_args(argv)
    logging.getLogger().setLevel(logging.INFO)
    results = {}
    for placement in args.placement:
        for name, cls in (("clock first (MXNet)", ClockFirstSpeedometer),
                          ("Speedometer", callback.Speedometer)):
            results[placement, name] = measure(placement, cls, args.epochs, args.frequent)
            print(f"{placement:10s} {name:20s} reported/real {results[placement, name]:8.2f}",
                  flush=True)
    return results


if __name__ == "__main__":
    main()
