"""The corpus of MXNet scripts (tests/mxnet_scripts/) runs unchanged through the compat command.

Every script is an MXNet 1.x script (`import mxnet as mx`, its own argparse
flags) that checks its own result and exits non-zero on failure. Each runs
on both placements:

- in_process: one `python -m raymod.mxnet_compat --raymod-placement in_process
  script.py ...` subprocess per script;
- ray: all scripts in ONE subprocess (tests/compat_run_many.py, itself run
  through the compat command), so Ray starts once rather than per script.

The scripts are MXNet's as much as raymod's: each one passes on the real
mxnet 1.9.1 (with scikit-learn) as it stands, e.g.
`/tmp/mxvenv/bin/python tests/mxnet_scripts/stochastic_depth.py`.

A known failure goes into KNOWN_BUGS, marked xfail(strict=True) with the bug:
when a fix lands the case passes, the strict mark turns that into a failure,
and the mark comes off. (Issue 9's all came off: every script passes on both.)
"""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "tests", "mxnet_scripts")
SCRIPTS = sorted(f[:-3] for f in os.listdir(CORPUS) if f.endswith(".py"))

KNOWN_BUGS = {}


def _args(name, folder):
    """The flags a script gets: where it may write, inside `folder`."""
    return {
        "mnist_iter": ["--data-dir", folder],
        "csv_iter": ["--data-dir", folder],
        "checkpoint_resume": ["--model-dir", folder],
        "fit_checkpoint_speedometer": ["--model-prefix", os.path.join(folder, "digits")],
    }.get(name, [])


def _cases(placement):
    marks = {name: [pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[(name, placement)])]
             for name in SCRIPTS if (name, placement) in KNOWN_BUGS}
    return [pytest.param(name, marks=marks.get(name, [])) for name in SCRIPTS]


def _env():
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}   # a Ray of its own
    env["RAY_AUTH_MODE"] = "disabled"
    return env


def _tail(text, lines=40):
    return "\n".join(text.strip().splitlines()[-lines:])


def test_the_corpus_is_mxnet_scripts():
    assert len(SCRIPTS) >= 8
    for name in SCRIPTS:
        with open(os.path.join(CORPUS, name + ".py")) as f:
            source = f.read()
        assert "import mxnet as mx" in source and "raymod" not in source, name
        assert "argparse" in source and "sys.exit(main())" in source, name


@pytest.mark.slow
@pytest.mark.parametrize("name", _cases("in_process"))
def test_script_in_process(name, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "raymod.mxnet_compat", "--raymod-placement", "in_process",
         os.path.join(CORPUS, name + ".py"), *_args(name, str(tmp_path))],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env=_env())
    assert done.returncode == 0, _tail(done.stdout + done.stderr)


@pytest.fixture(scope="module")
def ray_report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus_on_ray")
    spec = [{"name": name, "script": os.path.join(CORPUS, name + ".py"),
             "args": _args(name, str(folder / name))} for name in SCRIPTS]
    for name in SCRIPTS:
        (folder / name).mkdir()
    (folder / "spec.json").write_text(json.dumps(spec))
    done = subprocess.run(
        [sys.executable, "-m", "raymod.mxnet_compat", "--raymod-placement", "ray",
         os.path.join(ROOT, "tests", "compat_run_many.py"), str(folder / "spec.json"),
         str(folder / "report.json")],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env=_env())
    assert done.returncode == 0, _tail(done.stdout + done.stderr)
    return json.loads((folder / "report.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("name", _cases("ray"))
def test_script_on_ray(name, ray_report):
    result = ray_report[name]
    assert result["returncode"] == 0, _tail(result["output"])
