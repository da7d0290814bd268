"""The `device` exchange's shared buffers: the same sums as the kvstore, slots never clobbered.

The exchange objects run here in one process (no Ray): messages go through
pickle as they would through Ray, and a "peer" maps the other object's
buffer through /proc exactly as another actor on the machine would.
"""
import pickle

import numpy as np
import pytest

from raymod.base import MXNetError
from raymod.context import to_numpy
from raymod.parallel import grad_exchange as gx
from raymod.parallel.grad_exchange import BufferRef, ByValue, GradientExchange, sum_into

pytestmark = pytest.mark.skipif(gx.host_key() is None, reason="needs Linux /proc and memfd")

SHAPES = {"w": (3, 4), "b": (5,), "h": (2, 2)}


def _grads(rng, shapes=SHAPES, dtype=np.float32):
    return {n: rng.standard_normal(s).astype(dtype) for n, s in shapes.items()}


def _round(exchanges, grads, key="k"):
    """One exchange: every worker publishes, every worker gathers; (messages, sources)."""
    messages = [pickle.loads(pickle.dumps(e.publish(key, g)))
                for e, g in zip(exchanges, grads, strict=True)]
    sources = [e.gather(key, rank, messages) for rank, e in enumerate(exchanges)]
    return messages, sources


def _kvstore_sum(values):
    """The kvstore's sum (copy of the first, += the rest), the in-process reference."""
    total = np.array(values[0], copy=True)
    for v in values[1:]:
        total += v
    return total


def _reduce(sources, name):
    dst = np.empty_like(np.asarray(sources[0][name]))
    sum_into(np, dst, [s[name] for s in sources])
    return dst


@pytest.mark.parametrize("workers", [2, 3])
def test_by_value_then_shared_sums_equal_the_kvstore_bit_for_bit(workers):
    rng = np.random.default_rng(0)
    exchanges = [GradientExchange() for _ in range(workers)]
    kinds = []
    for _ in range(7):
        grads = [_grads(rng) for _ in range(workers)]
        messages, sources = _round(exchanges, grads)
        kinds.append({type(m).__name__ for m in messages})
        for per_worker in sources:
            for name in SHAPES:
                np.testing.assert_array_equal(_reduce(per_worker, name),
                                              _kvstore_sum([g[name] for g in grads]))
    # 1st: nobody knows the number of workers; 2nd: buffers announced; 3rd: mappings
    # confirmed; from the 4th on only references travel
    assert kinds == [{"ByValue"}] * 3 + [{"BufferRef"}] * 4
    assert all(e.counts == {"by_value": 3 * workers, "shared": 4 * workers}
               for e in exchanges)


def test_shared_gradients_are_read_in_place_from_the_peer():
    rng = np.random.default_rng(1)
    a, b = GradientExchange(), GradientExchange()
    for _ in range(3):
        _round([a, b], [_grads(rng), _grads(rng)])
    grads = [_grads(rng), _grads(rng)]
    messages, sources = _round([a, b], grads)
    assert isinstance(messages[1], BufferRef)
    peer_view = sources[0][1]["w"]              # worker 1's gradient as worker 0 sees it
    np.testing.assert_array_equal(peer_view, grads[1]["w"])
    assert not peer_view.flags.writeable        # a read-only mapping, not a copy
    assert not peer_view.flags.owndata


def test_a_slot_is_not_written_again_until_the_next_exchange_is_published():
    """Two slots in turn: publishing exchange m+1 leaves exchange m's gradients intact."""
    rng = np.random.default_rng(2)
    a, b = GradientExchange(), GradientExchange()
    for _ in range(3):
        _round([a, b], [_grads(rng), _grads(rng)])
    first = [_grads(rng), _grads(rng)]
    _, sources = _round([a, b], first)
    held = sources[0][1]["w"]                  # worker 0 still reading worker 1's slot ...
    second = [_grads(rng), _grads(rng)]
    b.publish("k", second[1])                  # ... while worker 1 publishes the next one
    np.testing.assert_array_equal(held, first[1]["w"])


def test_peers_on_another_machine_keep_sending_by_value(monkeypatch):
    rng = np.random.default_rng(3)
    a, b = GradientExchange(), GradientExchange()
    real = a.publish

    def from_elsewhere(key, grads):            # worker 0's buffer lives on another host
        message = real(key, grads)
        if isinstance(message, ByValue) and message.buffer is not None:
            message.buffer = ("another-host",) + message.buffer[1:]
        return message

    monkeypatch.setattr(a, "publish", from_elsewhere)
    for _ in range(6):
        grads = [_grads(rng), _grads(rng)]
        messages, sources = _round([a, b], grads)
        assert all(isinstance(m, ByValue) for m in messages)
        for per_worker in sources:
            np.testing.assert_array_equal(_reduce(per_worker, "b"),
                                          grads[0]["b"] + grads[1]["b"])


def test_without_a_buffer_gradients_go_by_value(monkeypatch):
    monkeypatch.setattr(gx, "host_key", lambda: None)
    rng = np.random.default_rng(4)
    a, b = GradientExchange(), GradientExchange()
    for _ in range(5):
        messages, _ = _round([a, b], [_grads(rng), _grads(rng)])
        assert all(isinstance(m, ByValue) and m.buffer is None for m in messages)


def test_new_parameter_shapes_are_announced_again():
    rng = np.random.default_rng(5)
    a, b = GradientExchange(), GradientExchange()
    for _ in range(4):
        _round([a, b], [_grads(rng), _grads(rng)])
    other = {"w": (6,), "v": (2, 3)}
    kinds = []
    for _ in range(3):
        grads = [_grads(rng, other), _grads(rng, other)]
        messages, sources = _round([a, b], grads)
        kinds.append({type(m).__name__ for m in messages})
        np.testing.assert_array_equal(_reduce(sources[1], "v"), grads[0]["v"] + grads[1]["v"])
    assert kinds == [{"ByValue"}, {"ByValue"}, {"BufferRef"}]


def test_a_group_on_fewer_of_the_workers_gets_a_buffer_of_its_own():
    """Worker 0 also exchanges alone (a shared_module on one of the devices): its slots
    for the pair are reused only between the pair's exchanges, never clobbered by its own."""
    rng = np.random.default_rng(6)
    a, b = GradientExchange(), GradientExchange()
    for _ in range(4):
        _round([a, b], [_grads(rng), _grads(rng)], key="pair")
        _round([a], [_grads(rng)], key="alone")
    pair = [_grads(rng), _grads(rng)]
    messages, sources = _round([a, b], pair, key="pair")
    assert all(isinstance(m, BufferRef) for m in messages)
    held = sources[1][0]["h"]                  # worker 1 reading worker 0's pair slot
    for _ in range(3):                         # worker 0 goes on alone meanwhile
        _round([a], [_grads(rng)], key="alone")
    np.testing.assert_array_equal(held, pair[0]["h"])
    alone, _ = _round([a], [_grads(rng)], key="alone")
    assert alone[0].key != messages[0].key


def test_sum_runs_left_to_right_in_place():
    rng = np.random.default_rng(7)
    parts = [rng.standard_normal(1000).astype(np.float32) * 10 ** i for i in range(3)]
    dst = np.empty(1000, np.float32)
    sum_into(np, dst, parts)
    np.testing.assert_array_equal(dst, (parts[0] + parts[1]) + parts[2])
    sum_into(np, dst, parts[:1])
    np.testing.assert_array_equal(dst, parts[0])


def test_plain_dicts_are_accepted():
    """Gradients returned without `exchange` (dicts) reduce the same way."""
    rng = np.random.default_rng(8)
    grads = [_grads(rng), _grads(rng)]
    sources = GradientExchange().gather("k", 0, grads)
    np.testing.assert_array_equal(_reduce(sources, "w"), grads[0]["w"] + grads[1]["w"])


def test_unknown_buffers_and_messages_are_errors():
    with pytest.raises(MXNetError, match="never mapped"):
        GradientExchange().gather("k", 0, [BufferRef((1, 2), 0)])
    with pytest.raises(MXNetError, match="received list"):
        GradientExchange().gather("k", 0, [[np.zeros(2)]])


def test_device_arrays_are_published_and_summed_on_their_device(ctx):
    """GPU workers publish host copies of their gradients and sum them on the device."""
    xp = ctx.xp
    rng = np.random.default_rng(9)
    a, b = GradientExchange(), GradientExchange()
    for _ in range(5):
        host = [_grads(rng), _grads(rng)]
        on_device = [{n: xp.asarray(v) for n, v in g.items()} for g in host]
        messages, sources = _round([a, b], on_device)
        dst = xp.zeros(SHAPES["w"], np.float32)
        sum_into(xp, dst, [s["w"] for s in sources[1]])
        np.testing.assert_array_equal(to_numpy(dst), host[0]["w"] + host[1]["w"])
    assert isinstance(messages[0], BufferRef)
