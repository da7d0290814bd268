"""Checkpoints in MXNet's layout: `prefix-symbol.json` and `prefix-%04d.params`."""
import logging

from .callback import BatchEndParam  # noqa: F401  (MXNet's home of the name)


def save_checkpoint(prefix, epoch, symbol, arg_params, aux_params, remove_amp_cast=True):
    """Write the symbol (unless None) and `arg:`/`aux:` parameters, each atomically."""
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


def load_params(prefix, epoch):
    """(arg_params, aux_params) from `prefix-%04d.params`."""
    fname = f"{prefix}-{epoch:04d}.params"
    arg_params, aux_params = split_params(fname, strict=False)
    if not arg_params and not aux_params:
        logging.warning("Params file '%s' is empty", fname)
    return arg_params, aux_params


def load_checkpoint(prefix, epoch):
    """(symbol, arg_params, aux_params) of checkpoint `prefix`-`epoch`."""
    from .symbol import load
    symbol = load(f"{prefix}-symbol.json")
    arg_params, aux_params = load_params(prefix, epoch)
    return symbol, arg_params, aux_params
