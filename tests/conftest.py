"""Shared fixtures: the device under test. Ray's session fixture lives in tests/parallel/."""
import numpy as np
import pytest

import raymod as rm
from raymod.context import gpu_available
from raymod.parallel import default_placement, set_default_placement

GPU_SKIP_REASON = "cupy or a CUDA GPU is missing (pip install 'raymod[gpu]' on a GPU machine)"


@pytest.fixture(params=["cpu", pytest.param("gpu", marks=pytest.mark.gpu)])
def ctx(request):
    """Each test body runs on numpy (cpu) and, where present, cupy (gpu)."""
    if request.param == "gpu":
        if not gpu_available():
            pytest.skip(GPU_SKIP_REASON)
        return rm.gpu(0)
    return rm.cpu(0)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(autouse=True, scope="session")
def in_process_by_default():
    """Math and module tests run workers in-process; Ray tests ask for placement='ray'."""
    before = default_placement()
    set_default_placement("in_process")
    yield
    set_default_placement(before)
