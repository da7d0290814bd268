"""The order C++ `std::shuffle(v, std::mt19937(seed))` gives, as in MXNet's released wheels.

MXNet's MNISTIter shuffles its examples once with `std::shuffle` and a
`std::mt19937` seeded with `seed`. The 1.9.1 wheel was built against
libstdc++'s classic algorithm (one draw per position, from the back of the
first `i + 1` elements: swap `v[i]` with `v[j]`, j uniform in [0, i]) with
`uniform_int_distribution`'s downscaling (draw r, reject r >= range *
(2**32 - 1) // range, j = r // ((2**32 - 1) // range)). numpy's MT19937,
seeded the legacy way, is the same generator as `std::mt19937`, so the
order is reproduced exactly (checked against the mxnet 1.9.1 wheel, on a
case where newer libstdc++'s multiply-shift draw would differ:
tests/fixtures/mxnet/iterators.json).
"""
import numpy as np

_URNG_RANGE = np.uint64(0xFFFFFFFF)   # mt19937's max() - min()


def _mt19937(seed):
    """A numpy MT19937 in the state `std::mt19937(seed)` starts in (32-bit outputs)."""
    legacy = np.random.RandomState(int(seed) % 2**32).get_state()
    bits = np.random.MT19937()
    bits.state = {"bit_generator": "MT19937", "state": {"key": legacy[1], "pos": legacy[2]}}
    return bits


def _swap_targets(n, bits):
    """j for each i in 1..n-1, drawn as libstdc++'s uniform_int_distribution(0, i) draws it."""
    targets = np.empty(max(n - 1, 0), dtype=np.int64)
    draws = bits.random_raw(n)
    used, i = 0, 1
    while i < n:
        if len(draws) - used < n - i:   # rejections used up the spare draws
            draws = np.concatenate([draws[used:], bits.random_raw(n)])
            used = 0
        span = np.arange(i, n, dtype=np.uint64) + np.uint64(1)
        scaling = _URNG_RANGE // span
        chunk = draws[used:used + (n - i)]
        rejected = np.flatnonzero(chunk >= span * scaling)
        accepted = int(rejected[0]) if rejected.size else n - i
        targets[i - 1:i - 1 + accepted] = chunk[:accepted] // scaling[:accepted]
        i += accepted
        used += accepted + (1 if rejected.size else 0)   # a rejected draw is skipped
    return targets


def std_shuffle_order(n, seed):
    """The permutation of range(n) that `std::shuffle` with `std::mt19937(seed)` makes."""
    order = list(range(n))
    for i, j in enumerate(_swap_targets(n, _mt19937(seed)).tolist(), start=1):
        order[i], order[j] = order[j], order[i]
    return np.asarray(order, dtype=np.int64)
