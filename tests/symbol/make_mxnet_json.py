"""Write the MXNet 1.9.1 reference files in mxnet_json/ (needs mxnet==1.9.1, not raymod).

For every graph of mxnet_graphs.GRAPHS this writes `<name>-symbol.json`
(MXNet's `tojson()` text, byte for byte) and one `expected.json` holding what
MXNet answers for list_arguments, list_outputs, list_auxiliary_states,
attr_dict and infer_shape / infer_type. The tests rebuild each graph with
raymod and compare. MXNet is never a raymod dependency; run in a scratch
environment::

    python3 -m venv /tmp/mxvenv && /tmp/mxvenv/bin/pip install mxnet==1.9.1 'numpy<1.24'
    /tmp/mxvenv/bin/python tests/symbol/make_mxnet_json.py
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "mxnet_json")


def _shapes(shapes):
    return None if shapes is None else [list(s) for s in shapes]


def _types(types):
    import numpy as np
    return None if types is None else [np.dtype(t).name for t in types]


def main():
    import mxnet as mx
    sys.path.insert(0, HERE)
    from mxnet_graphs import GRAPHS, build
    os.makedirs(OUT, exist_ok=True)
    expected = {}
    for name, (_, shapes) in GRAPHS.items():
        sym = build(name, mx.sym, mx.name, mx.AttrScope)
        with open(os.path.join(OUT, f"{name}-symbol.json"), "w") as f:
            f.write(sym.tojson())
        arg_s, out_s, aux_s = sym.infer_shape_partial(**shapes)
        arg_t, out_t, aux_t = sym.infer_type(**{k: "float32" for k in shapes})
        expected[name] = {
            "list_arguments": sym.list_arguments(),
            "list_outputs": sym.list_outputs(),
            "list_auxiliary_states": sym.list_auxiliary_states(),
            "attr_dict": sym.attr_dict(),
            "infer_shape_partial": [_shapes(arg_s), _shapes(out_s), _shapes(aux_s)],
            "infer_type": [_types(arg_t), _types(out_t), _types(aux_t)],
        }
        print(f"wrote {name}-symbol.json")
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
    print("wrote expected.json")


if __name__ == "__main__":
    main()
