"""Learning curves from training histories: ``python -m raymod.plot HISTORY... -o curve.png``.

Each metric gets a panel with its value per epoch, training as a solid line
and validation dashed; several history files (CSV or JSON lines, paths or
fsspec URLs, as `rm.callback.HistoryWriter` writes them) are drawn side by
side in the same panels, labelled by file name. Needs matplotlib
(``pip install 'raymod[plot]'``).
"""
import argparse
import math
import os
import sys

from .history import TrainingHistory

__all__ = ["plot_history", "main"]


def _figure_class():
    # matplotlib.figure.Figure, not pyplot: no display, and a user's own pyplot
    # backend (a notebook's) is left alone.
    try:
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError("plotting needs matplotlib: pip install 'raymod[plot]'") from err
    return Figure


def _integer_locator():
    from matplotlib.ticker import MaxNLocator
    return MaxNLocator(integer=True)


def _label(source, index):
    if isinstance(source, TrainingHistory):
        return f"run {index}"
    name = os.path.basename(str(source).rstrip("/"))
    for ext in (".csv", ".jsonl", ".json"):
        if name.endswith(ext):
            name = name[:-len(ext)]
    return name


def plot_history(histories, fname=None, title=None, dpi=100):
    """Draw every metric of `histories` per epoch; save to `fname` when given.

    Parameters
    ----------
    histories : TrainingHistory, str, or list of them
        Histories, or files (CSV / JSON lines, path or fsspec URL) to read them from.
    fname : str, optional
        Image file to write (format from its extension: .png, .svg, .pdf).
    title : str, optional
        The figure's title.
    dpi : int, default 100

    Returns
    -------
    matplotlib.figure.Figure
    """
    figure_class = _figure_class()
    if isinstance(histories, (TrainingHistory, str, os.PathLike)):
        histories = [histories]
    runs = []
    for i, source in enumerate(histories):
        history = source if isinstance(source, TrainingHistory) else TrainingHistory.load(source)
        if not len(history):
            raise ValueError(f"{_label(source, i)}: the history has no epochs to plot")
        runs.append((_label(source, i), history))
    names = list(dict.fromkeys(n for _, h in runs
                               for n in h.metric_names("train") + h.metric_names("val")))
    if not names:
        raise ValueError("the histories hold no metric values to plot")
    cols = min(len(names), 3)
    rows = math.ceil(len(names) / cols)
    fig = figure_class(figsize=(5 * cols, 3.6 * rows), dpi=dpi)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, name in zip(axes.flat, names):
        for k, (label, history) in enumerate(runs):
            color = f"C{k}"
            prefix = f"{label} " if len(runs) > 1 else ""
            for split, style in (("train", "-"), ("val", "--")):
                if name in history.metric_names(split):
                    ax.plot(history.epochs, history.metric(name, split), style, color=color,
                            marker="o", markersize=3, label=f"{prefix}{split}")
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(_integer_locator())
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if fname is not None:
        _save(fig, fname)
    return fig


def _save(fig, fname):
    import io
    from .fileio import atomic_write_bytes
    ext = os.path.splitext(str(fname))[1].lstrip(".").lower() or "png"
    buf = io.BytesIO()
    fig.savefig(buf, format=ext)
    atomic_write_bytes(fname, buf.getvalue())


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m raymod.plot", description="Draw learning curves from training "
        "histories (CSV or JSON lines written by rm.callback.HistoryWriter).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("history", nargs="+", help="history files (paths or fsspec URLs)")
    parser.add_argument("-o", "--output", default="curve.png",
                        help="image to write (.png, .svg or .pdf)")
    parser.add_argument("--title", default=None, help="figure title")
    parser.add_argument("--dpi", type=int, default=100)
    args = parser.parse_args(argv)
    try:
        plot_history(args.history, args.output, title=args.title, dpi=args.dpi)
    except (ImportError, ValueError, FileNotFoundError) as err:
        parser.exit(1, f"python -m raymod.plot: error: {err}\n")
    print(f"wrote {args.output}")
    return args.output


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
