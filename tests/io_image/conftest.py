"""Shared by the RecordIO / ImageRecordIter / im2rec tests: the MXNet-written fixtures."""
import importlib.util
import os

import pytest

pytest.importorskip("cv2", reason="needs OpenCV: pip install 'raymod[image]'")

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "fixtures", "mxnet_image")


def _load_make_fixtures():
    spec = importlib.util.spec_from_file_location(
        "mxnet_image_fixtures", os.path.join(FIXTURES, "make_fixtures.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MF = _load_make_fixtures()


def fixture(*names):
    return os.path.join(FIXTURES, *names)
