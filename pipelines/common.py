"""What every pipeline shares: its command line, logging, outputs, progress and plots.

The conventions (every pipeline in this folder follows them):

- ``parser(doc)``: an ArgumentParser whose --help shows each option's default.
- ``setup_logging()`` first thing in main: INFO lines with the time on stderr,
  so a run is never silent (raymod says when the embedded Ray is starting).
- ``add_output_options(parser, name)``: ``--output`` (a folder or an fsspec
  URL such as ``s3://bucket/runs``; default ``runs``) where the checkpoints
  ``<name>-symbol.json``/``<name>-NNNN.params`` and the history
  ``<name>-history.csv`` go; ``--plot`` to draw ``<name>-curve.png`` there
  at the end; ``--progress`` (``auto``: a bar on a terminal, one line per
  epoch otherwise).
- ``Outputs(args, name)`` gives the paths, creates the folder, and hands fit
  its ``callbacks`` and a module ``logger``; ``outputs.finish()`` draws the plot.
"""
import argparse
import logging

import raymod as rm
from raymod import fileio

PROGRESS_CHOICES = ("auto", "bar", "lines", "off")


class _DefaultsFormatter(argparse.RawDescriptionHelpFormatter):
    """--help shows every option's default (none for flags and unset options)."""

    def _get_help_string(self, action):
        text = action.help or ""
        unset = action.default is None or action.default is False \
            or action.default == argparse.SUPPRESS
        if action.option_strings and not unset:
            default = action.default
            if isinstance(default, list):
                default = " ".join(map(str, default))
            text += f" (default: {default})"
        return text


def parser(doc):
    """An ArgumentParser with `doc` (a pipeline's docstring) as its description,
    showing every option's default in --help."""
    return argparse.ArgumentParser(description=doc.strip(), formatter_class=_DefaultsFormatter)


def setup_logging(level=logging.INFO):
    logging.basicConfig(level=level, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")


def add_output_options(p, name, checkpoints=True):
    files = (f"{name}-NNNN.params, {name}-symbol.json and " if checkpoints else "") \
        + f"{name}-history.csv"
    p.add_argument("--output", default="runs",
                   help=f"folder or fsspec URL (s3://bucket/runs, gs://..., file://...) "
                        f"for {files}")
    p.add_argument("--plot", action="store_true",
                   help=f"draw the learning curves to <output>/{name}-curve.png at the end "
                        f"(needs matplotlib: pip install 'raymod[plot]')")
    p.add_argument("--progress", choices=PROGRESS_CHOICES, default="auto",
                   help="per-epoch progress: a bar on a terminal, else one line per epoch")


class Outputs:
    """The files of one pipeline run under ``args.output``, named after the pipeline."""

    def __init__(self, args, name):
        self.args = args
        self.name = name
        self.root = args.output
        fileio.makedirs(self.root)
        self.prefix = fileio.join(self.root, name)
        self.history = f"{self.prefix}-history.csv"
        self.curve = f"{self.prefix}-curve.png"

    def params_file(self, epoch):
        return f"{self.prefix}-{epoch:04d}.params"

    def callbacks(self):
        """fit's `callbacks`: the progress display and the history file."""
        callbacks = [rm.callback.HistoryWriter(self.history)]
        if self.args.progress != "off":
            bar = {"auto": None, "bar": True, "lines": False}[self.args.progress]
            callbacks.insert(0, rm.callback.TrainingProgress(bar=bar))
        return callbacks

    def module_logger(self):
        """The module's logger: fit's own per-epoch lines are the progress line's job."""
        logger = logging.getLogger(f"pipelines.{self.name}.fit")
        logger.setLevel(logging.INFO if self.args.progress == "off" else logging.WARNING)
        return logger

    def finish(self):
        """Draw the learning curves when --plot was given; returns the files written."""
        written = [self.history]
        if self.args.plot:
            from raymod.plot import plot_history
            plot_history(self.history, self.curve, title=self.name)
            written.append(self.curve)
        logging.info("wrote %s", ", ".join(written))
        return written
