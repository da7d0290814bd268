"""`python -m raymod.mxnet_compat script.py [args]`: run an MXNet script unchanged on raymod.

The implementation (and a function for notebooks, `install()`) is
raymod.contrib.mxnet_alias; `--help` shows the options.
"""
from .contrib.mxnet_alias import main

if __name__ == "__main__":
    raise SystemExit(main())
