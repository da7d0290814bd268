"""raymod.ndarray: NDArray (a numpy subclass with MXNet's methods) and its constructors."""
import pickle
import warnings

import numpy as np
import pytest

import raymod.ndarray as nd
from raymod.context import CUPY_AVAILABLE, cpu, gpu, gpu_available


def test_array_dtype_rules_follow_mxnet():
    # mxnet 1.9.1: nd.array of a list, a float64 or an int32 numpy array is float32
    assert nd.array([1, 2]).dtype == np.float32
    assert nd.array(np.zeros(2, np.float64)).dtype == np.float32
    assert nd.array(np.arange(3, dtype=np.int32)).dtype == np.float32
    # an NDArray source keeps its dtype; dtype= overrides both
    ints = nd.array([1, 2], dtype="int32")
    assert ints.dtype == np.int32 and nd.array(ints).dtype == np.int32
    assert nd.array(ints, dtype=np.float16).dtype == np.float16


def test_array_copies_its_source():
    src = np.arange(4.0, dtype=np.float32)
    arr = nd.array(src)
    src[0] = 9.0
    assert arr[0] == 0.0 and isinstance(arr, nd.NDArray) and isinstance(arr, np.ndarray)


def test_array_rejects_non_arrays():
    with pytest.raises(TypeError, match="array-like"):
        nd.array([[1, 2], [3]])
    with pytest.raises(TypeError, match="Python objects"):
        nd.array({"a": 1})
    with pytest.raises(TypeError, match="ctx must be a Context"):
        nd.array([1], ctx="cpu")
    with pytest.raises(TypeError, match="dtype"):
        nd.array([1], dtype="not-a-dtype")


def test_asnumpy_is_a_plain_copy():
    arr = nd.array([[1, 2], [3, 4]])
    host = arr.asnumpy()
    assert type(host) is np.ndarray and host.dtype == np.float32
    host[0, 0] = 100
    assert arr[0, 0] == 1


def test_asscalar():
    assert nd.array([3.5]).asscalar() == 3.5
    assert isinstance(nd.array([3]).asscalar(), np.float32)
    assert nd.ones((1, 1, 1)).asscalar() == 1.0
    with pytest.raises(ValueError, match=r"not a scalar.*shape \(1, 2\)"):
        nd.array([[1, 2]]).asscalar()
    # numpy reductions of an NDArray stay NDArrays, so MXNet's `.sum().asscalar()` works
    assert (nd.array([1, 2, 3]) > 1).sum().asscalar() == 2


def test_context_propagates_and_moves():
    arr = nd.array([1.0, 2.0])
    assert arr.context == cpu(0) and arr.ctx == cpu(0)
    assert arr.as_in_context(cpu(0)) is arr
    moved = arr.as_in_context(cpu(1))
    assert moved.context == cpu(1) and not np.shares_memory(moved, arr)
    np.testing.assert_array_equal(moved, arr)
    assert moved[1:].context == cpu(1)             # views
    assert (moved * 2).context == cpu(1)           # ufunc results
    assert moved.copy().context == cpu(1)
    assert arr.context == cpu(0)
    with cpu(3):
        assert nd.zeros(2).context == cpu(3)
    with pytest.raises(TypeError, match="expects a Context"):
        arr.as_in_context("cpu(1)")


def test_copyto_array_and_context():
    src = nd.array([1.5, 2.5])
    dst = nd.zeros(2)
    assert src.copyto(dst) is dst
    np.testing.assert_array_equal(dst, [1.5, 2.5])
    ints = np.zeros(2, np.int32)
    src.copyto(ints)                      # cast to the target's dtype
    assert ints.tolist() == [1, 2]
    new = src.copyto(cpu(2))
    assert new.context == cpu(2) and not np.shares_memory(new, src)
    with pytest.raises(ValueError, match=r"target shape \(3,\) does not match source shape \(2,\)"):
        src.copyto(nd.zeros(3))
    with pytest.raises(TypeError, match="copyto does not support type int"):
        src.copyto(5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert src.copyto(src) is False
    assert "copy an array to itself" in str(caught[0].message)


@pytest.mark.skipif(CUPY_AVAILABLE, reason="checks the error raised without cupy")
def test_gpu_context_without_cupy_is_a_clear_error():
    with pytest.raises(RuntimeError, match="needs cupy"):
        nd.array([1.0]).as_in_context(gpu(0))


@pytest.mark.gpu
@pytest.mark.skipif(not gpu_available(), reason="cupy or a CUDA GPU is missing")
def test_gpu_context_gives_cupy_arrays():
    import cupy
    dev = nd.array([1.0, 2.0]).as_in_context(gpu(0))
    assert isinstance(dev, cupy.ndarray) and dev.dtype == np.float32
    back = nd.zeros(2)
    nd.array(cupy.asnumpy(dev)).copyto(back)
    assert back.tolist() == [1.0, 2.0]
    target = cupy.zeros(2, dtype=cupy.float32)
    nd.array([3.0, 4.0]).copyto(target)
    assert target.tolist() == [3.0, 4.0]
    assert nd.array(dev).dtype == np.float32 and nd.array(dev).tolist() == [1.0, 2.0]


def test_mxnet_no_op_members():
    arr = nd.ones(3)
    assert arr.stype == "default"
    assert arr.wait_to_read() is None and arr.wait_to_write() is None and nd.waitall() is None


def test_constructors():
    assert nd.zeros((2, 3)).shape == (2, 3) and nd.zeros(4).dtype == np.float32
    assert nd.ones(2, dtype="int64").tolist() == [1, 1]
    assert nd.empty((1, 2), dtype=np.float16).dtype == np.float16
    full = nd.full((2,), 7)
    assert full.dtype == np.float32 and full.tolist() == [7.0, 7.0]
    out = nd.zeros(3)
    assert nd.full((3,), 2.0, out=out) is out and out.tolist() == [2.0] * 3
    assert nd.arange(3).tolist() == [0.0, 1.0, 2.0]
    assert nd.arange(1, 3, repeat=2).tolist() == [1.0, 1.0, 2.0, 2.0]
    assert all(isinstance(a, nd.NDArray) for a in (nd.zeros(1), nd.ones(1), nd.empty(1),
                                                    nd.full(1, 1), nd.arange(2)))
    with pytest.raises(ValueError, match="negative"):
        nd.zeros((2, -1))
    with pytest.raises(TypeError, match="shape must be"):
        nd.ones("abc")
    with pytest.raises(ValueError, match="stype must be 'default'"):
        nd.zeros(2, stype="csr")


def test_concat():
    a, b = nd.ones((2, 1)), nd.zeros((2, 2))
    joined = nd.concat(a, b)                         # MXNet's default dim=1
    assert joined.shape == (2, 3) and isinstance(joined, nd.NDArray)
    assert nd.concat(nd.ones((1, 2)), nd.zeros((3, 2)), dim=0).shape == (4, 2)
    assert nd.concatenate([a, a], axis=0).shape == (4, 1)
    with pytest.raises(ValueError, match=r"array 1 has shape \(3, 2\)"):
        nd.concat(nd.ones((2, 2)), nd.zeros((3, 2)), dim=1)
    with pytest.raises(ValueError, match="out of range"):
        nd.concat(a, b, dim=2)
    with pytest.raises(ValueError, match="at least one"):
        nd.concat()


def test_slice_axis_is_a_view():
    arr = nd.array(np.arange(12).reshape(3, 4))
    part = arr.slice_axis(axis=1, begin=1, end=3)
    assert part.tolist() == [[1, 2], [5, 6], [9, 10]]
    part[0, 0] = -1
    assert arr[0, 1] == -1
    assert nd.slice_axis(arr, 0, 1, None).shape == (2, 4)
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        arr.slice_axis(2, 0, 1)


def test_pickle_keeps_class_values_and_context():
    arr = nd.array([[1, 2], [3, 4]], ctx=cpu(1))
    back = pickle.loads(pickle.dumps(arr))
    assert isinstance(back, nd.NDArray) and back.context == cpu(1)
    np.testing.assert_array_equal(back, arr)


def test_repr_is_mxnet_style():
    assert repr(nd.array([[1, 2], [3, 4]])).endswith("<NDArray 2x2 @cpu(0)>")


def test_numpy_functions_accept_ndarrays():
    a = nd.array([[1, 2], [3, 4]])
    assert np.dot(a, a).tolist() == [[7, 10], [15, 22]]
    assert float(np.mean(a)) == 2.5
