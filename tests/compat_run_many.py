"""Run several MXNet scripts, unchanged, one after another in ONE process (and one Ray).

Meant to be run through the compat command, which installs the `mxnet`
alias and the placement::

    python -m raymod.mxnet_compat --raymod-placement ray tests/compat_run_many.py \\
        SPEC.json REPORT.json

SPEC.json is a list of {"name", "script", "args"}; REPORT.json receives, per
name, the script's exit code, its seconds and the tail of what it printed.
Starting Ray once instead of once per script is the point: on the 2-core CI
machines Ray's start dominates a small script's run. Each script gets what a
fresh process would give it: its own argv and sys.path entry (run_script),
fresh automatic names, raymod's unseeded random state, and logging not yet
configured.
"""
import contextlib
import io
import json
import logging
import sys
import time
import traceback

import raymod.random
from raymod.contrib.mxnet_alias import run_script
from raymod.name import NameManager

TAIL_CHARS = 3000


def _fresh_logging():
    """Logging as a new process has it, so each script's basicConfig takes effect."""
    root = logging.getLogger()
    for handler in root.handlers[:]:
        root.removeHandler(handler)
    root.setLevel(logging.WARNING)


def run_one(script, args):
    """(exit code, seconds, printed output) of one script run in this process."""
    _fresh_logging()
    raymod.random.seed(0)   # what an unseeded process starts from
    out = io.StringIO()
    start = time.perf_counter()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out), NameManager():
        try:
            run_script(script, args)
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
            if not isinstance(stop.code, (int, type(None))):
                print(stop.code)
        except BaseException:   # noqa: BLE001  (a script's crash is its result)
            traceback.print_exc()
            code = 1
    _fresh_logging()
    return code, time.perf_counter() - start, out.getvalue()


def main(spec_path, report_path):
    with open(spec_path) as f:
        spec = json.load(f)
    report = {}
    for entry in spec:
        code, seconds, output = run_one(entry["script"], entry.get("args", []))
        report[entry["name"]] = {"returncode": code, "seconds": round(seconds, 2),
                                 "output": output[-TAIL_CHARS:]}
        print(f"{entry['name']}: exit {code} in {seconds:.1f} s", file=sys.__stdout__,
              flush=True)
    with open(report_path, "w") as f:
        json.dump(report, f, indent=1)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
