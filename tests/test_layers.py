"""DESIGN.md's layers: the math never imports Ray, modules never call Ray directly.

Checked on the source with `ast`, so a lazy import inside a function counts too.
"""
import ast
import pathlib

import pytest

PKG = pathlib.Path(__file__).resolve().parents[1] / "raymod"
MATH = ("ops", "symbol", "executor.py", "executor_plan.py", "context.py", "base.py")
KIT = ("io", "metric", "optimizer", "initializer.py", "callback.py", "model.py", "rnn",
       "ndarray", "lr_scheduler.py", "monitor.py", "random.py", "fileio.py", "history.py",
       "fit_callbacks.py", "progress.py", "plot.py")


def imported_modules(path):
    """Absolute names of every module a file imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ".".join(path.relative_to(PKG.parent).with_suffix("").parts[:-1])
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                prefix = ".".join(base)
                mod = f"{prefix}.{node.module}" if node.module else prefix
                names.append(mod)
                if not node.module:
                    names.extend(f"{prefix}.{a.name}" for a in node.names)
            else:
                names.append(node.module)
    return names


def files_under(*parts):
    for part in parts:
        target = PKG / part
        yield from ([target] if target.suffix == ".py" else sorted(target.rglob("*.py")))


# The one file outside raymod/parallel that imports Ray: the Tune adapter, which reports.
RAY_ALLOWED_OUTSIDE_PARALLEL = {PKG / "contrib" / "tune.py"}


def files_outside_parallel():
    return [p for p in sorted(PKG.rglob("*.py"))
            if p.relative_to(PKG).parts[0] != "parallel"
            and p not in RAY_ALLOWED_OUTSIDE_PARALLEL]


@pytest.mark.parametrize("path", files_outside_parallel(),
                         ids=lambda p: str(p.relative_to(PKG)))
def test_no_ray_outside_the_parallel_layer(path):
    bad = [m for m in imported_modules(path) if m == "ray" or m.startswith("ray.")]
    assert not bad, (f"{path.relative_to(PKG)} imports {bad}; Ray lives in raymod/parallel "
                     f"(and raymod/contrib/tune.py)")


def test_the_tune_adapter_is_the_exception_and_imports_ray():
    """If the adapter stops importing Ray, the exception should go too."""
    (path,) = RAY_ALLOWED_OUTSIDE_PARALLEL
    assert any(m == "ray" or m.startswith("ray.") for m in imported_modules(path))
    assert path not in files_outside_parallel()
    assert PKG / "contrib" / "tensorboard.py" in files_outside_parallel()


@pytest.mark.parametrize("path", list(files_under(*MATH, *KIT)),
                         ids=lambda p: str(p.relative_to(PKG)))
def test_math_and_kit_do_not_import_modules_or_parallel(path):
    bad = [m for m in imported_modules(path)
           if m.startswith(("raymod.module", "raymod.parallel"))]
    assert not bad, f"{path.relative_to(PKG)} imports {bad}, a layer above it"


def test_the_checker_sees_relative_imports():
    fake = PKG / "ops" / "base.py"
    assert "raymod.base" in imported_modules(fake)
