"""Checkpoints in MXNet's layout: `prefix-symbol.json` and `prefix-%04d.params`."""
import logging
import re

from .callback import BatchEndParam  # noqa: F401  (MXNet's home of the name)


def save_checkpoint(prefix, epoch, symbol, arg_params, aux_params, remove_amp_cast=True):
    """Write `prefix-symbol.json` (unless `symbol` is None) and `prefix-%04d.params`.

    Each file is written atomically (see `raymod.fileio`).

    Parameters
    ----------
    prefix : str
        A local path prefix or an fsspec URL (``s3://bucket/run/mlp``,
        ``memory://run/mlp``; fsspec is the ``fsspec`` extra).
    epoch : int
        The checkpoint's number, written as ``%04d``.
    symbol : Symbol or None
    arg_params, aux_params : dict of str to array
        Saved under ``arg:`` and ``aux:`` names, MXNet's layout.
    remove_amp_cast : bool, default True
        Accepted for MXNet compatibility (raymod has no AMP casts to remove).
    """
    from . import ndarray as nd
    if symbol is not None:
        symbol.save(f"{prefix}-symbol.json")
    save_dict = {f"arg:{k}": v for k, v in arg_params.items()}
    save_dict.update({f"aux:{k}": v for k, v in aux_params.items()})
    param_name = f"{prefix}-{epoch:04d}.params"
    nd.save(param_name, save_dict)
    logging.info('Saved checkpoint to "%s"', param_name)


def split_params(fname, strict):
    """(arg_params, aux_params) from an `arg:`/`aux:` .params file.

    strict: other prefixes raise (Module.load_params); otherwise they are
    skipped (mx.model.load_params).
    """
    from . import ndarray as nd
    save_dict = nd.load(fname)
    arg_params, aux_params = {}, {}
    if not save_dict:
        return arg_params, aux_params
    if not isinstance(save_dict, dict):
        raise ValueError(f"Invalid param file {fname}: expected named arrays (arg:/aux:), "
                         f"found an unnamed list")
    for key, value in save_dict.items():
        kind, _, name = key.partition(":")
        if kind == "arg":
            arg_params[name] = value
        elif kind == "aux":
            aux_params[name] = value
        elif strict:
            raise ValueError(f"Invalid param file {fname}: key {key!r} is neither arg: nor aux:")
    return arg_params, aux_params


def saved_epochs(prefix):
    """The epochs that have a `prefix-%04d.params` file (path or URL prefix), sorted."""
    from .fileio import glob
    base = re.split(r"[/\\]", str(prefix).rstrip("/"))[-1]
    own_file = re.compile(re.escape(base) + r"-(\d{4,})\.params$")
    epochs = set()
    for path in glob(f"{_glob_escape(prefix)}-*.params"):
        match = own_file.fullmatch(re.split(r"[/\\]", path)[-1])
        if match:
            epochs.add(int(match.group(1)))
    return sorted(epochs)


def _glob_escape(path):
    """`path` with glob's wildcard characters escaped ([*] style)."""
    return re.sub(r"([*?\[])", r"[\1]", str(path))


def _require_checkpoint(prefix, epoch):
    from .fileio import exists
    fname = f"{prefix}-{epoch:04d}.params"
    if exists(fname):
        return fname
    epochs = saved_epochs(prefix)
    found = (f"the epochs saved under that prefix are {', '.join(map(str, epochs))}"
             if epochs else f"no {prefix}-NNNN.params file exists")
    raise FileNotFoundError(f"no checkpoint for epoch {epoch}: {fname} does not exist; {found}")


def load_params(prefix, epoch):
    """(arg_params, aux_params) from `prefix-%04d.params`.

    Parameters
    ----------
    prefix : str
        Checkpoint prefix: a local path or an fsspec URL (``s3://bucket/run/mlp``).
    epoch : int
        The checkpoint's number (1-based: the file saved after epoch 0 is 0001).

    Raises
    ------
    FileNotFoundError
        When that epoch was not saved; the message lists the epochs that were.
    """
    fname = _require_checkpoint(prefix, epoch)
    arg_params, aux_params = split_params(fname, strict=False)
    if not arg_params and not aux_params:
        logging.warning("Params file '%s' is empty", fname)
    return arg_params, aux_params


def load_checkpoint(prefix, epoch):
    """(symbol, arg_params, aux_params) of checkpoint `prefix`-`epoch`.

    Parameters
    ----------
    prefix : str
        Checkpoint prefix: a local path or an fsspec URL.
    epoch : int
        The checkpoint's number.

    Raises
    ------
    FileNotFoundError
        When that epoch was not saved (the message lists the epochs that were),
        or `prefix-symbol.json` is missing.
    """
    from .symbol import load
    _require_checkpoint(prefix, epoch)
    symbol = load(f"{prefix}-symbol.json")
    arg_params, aux_params = load_params(prefix, epoch)
    return symbol, arg_params, aux_params
