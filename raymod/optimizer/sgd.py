"""SGD and NAG (momentum optimizers), with MXNet's fused-kernel arithmetic.

Notation: ``G = clip(rescale_grad * grad)``; `lr`, `wd` are per-index values.
"""
import warnings

import numpy as np

from ..context import array_module
from .optimizer import Optimizer, copy_as, register, zeros_like

__all__ = ["SGD", "NAG", "ccSGD", "Test"]


class _MomentumOptimizer(Optimizer):
    """Shared by SGD and NAG: momentum state, and MXNet's (state, fp32 master) layout."""

    def __init__(self, momentum=0.0, **kwargs):
        super().__init__(**kwargs)
        self.momentum = momentum

    def create_state(self, index, weight):
        if self.momentum != 0.0:
            return zeros_like(weight)
        return None

    def create_state_multi_precision(self, index, weight):
        # SGD and NAG keep MXNet's mp_*_update order: (momentum, fp32 master).
        if self.multi_precision and weight.dtype == np.float16:
            master = copy_as(weight, np.float32)
            return (self.create_state(index, master), master)
        if weight.dtype == np.float16 and not self.multi_precision:
            warnings.warn("Accumulating with float16 in optimizer can lead to "
                          "poor accuracy or slow convergence. "
                          "Consider using multi_precision=True option of the "
                          f"{type(self).__name__} optimizer")
        return self.create_state(index, weight)

    def update_multi_precision(self, index, weight, grad, state):
        if (self.multi_precision and weight.dtype == np.float16
                and isinstance(state, (tuple, list))):
            mom, master = state
            self.update(index, master, self._grad_fp32(master, grad), mom)
            weight[...] = master
        else:
            self.update(index, weight, grad, state)

    def _scaled_grad(self, weight, grad, g):
        """g = clip(rescale_grad * grad), written into the scratch array `g`."""
        xp = array_module(weight)
        xp.multiply(grad, self.rescale_grad, out=g)
        clip = self._kernel_clip()
        if clip is not None:
            xp.clip(g, -clip, clip, out=g)
        return g

    def _sgd_step(self, weight, grad, lr, wd):
        """MXNet's sgd_update: w = (1 - lr*wd)*w - lr*G."""
        (g,) = self._buffers(weight, 1)
        self._scaled_grad(weight, grad, g)
        g *= lr
        weight *= (1.0 - lr * wd)
        weight -= g


@register
class SGD(_MomentumOptimizer):
    """Stochastic gradient descent with momentum and weight decay.

    Without momentum: ``w = (1 - lr*wd)*w - lr*G``.
    With momentum: ``mom = momentum*mom - lr*wd*w - lr*G; w = w + mom``.

    Parameters
    ----------
    momentum : float, default 0.0
        The momentum value; a momentum state exists only when it is not 0.
    lazy_update : bool, default True
        Accepted for MXNet compatibility; raymod has no row-sparse arrays, so it
        changes nothing.
    """

    def __init__(self, momentum=0.0, lazy_update=True, **kwargs):
        super().__init__(momentum=momentum, **kwargs)
        self.lazy_update = lazy_update

    def update(self, index, weight, grad, state):
        lr, wd = self._prepare(index, weight, grad)
        if state is None:
            self._sgd_step(weight, grad, lr, wd)
            return
        # sgd_mom_update; a non-positive momentum is not passed to the kernel (0).
        momentum = self.momentum if self.momentum > 0 else 0.0
        xp = array_module(weight)
        g, t = self._buffers(weight, 2) if wd else (self._buffers(weight, 1)[0], None)
        if self._kernel_clip() is None:
            xp.multiply(grad, self.rescale_grad * lr, out=g)     # one pass: lr * rescale * grad
        else:
            self._scaled_grad(weight, grad, g)
            g *= lr
        state *= momentum
        state -= g
        if wd:                  # two more passes only when there is weight decay
            xp.multiply(weight, lr * wd, out=t)
            state -= t
        weight += state


@register
class NAG(_MomentumOptimizer):
    """Nesterov accelerated gradient, as MXNet's `nag_mom_update` kernel.

    Without momentum it is SGD. With momentum (``m' = momentum*mom``)::

        w_new = w - m' + (1 + momentum) * (m' - lr*(G + wd*w))
        mom   = m' - lr*(G + wd*w_new)

    The second line uses the *updated* weight: MXNet's kernel writes the weight
    in place before computing the momentum (quirk Q9, replicated).
    """

    def update(self, index, weight, grad, state):
        lr, wd = self._prepare(index, weight, grad)
        if state is None:
            self._sgd_step(weight, grad, lr, wd)
            return
        momentum = self.momentum if self.momentum > 0 else 0.0
        xp = array_module(weight)
        g, t = self._buffers(weight, 2)
        self._scaled_grad(weight, grad, g)
        state *= momentum                      # m'
        xp.multiply(weight, wd, out=t)
        t += g
        t *= lr                                # lr*(G + wd*w)
        xp.subtract(state, t, out=t)
        t *= (1.0 + momentum)
        weight -= state
        weight += t                            # w_new
        xp.multiply(weight, wd, out=t)         # wd*w_new: the aliasing quirk
        t += g
        t *= lr
        state -= t


@register
class ccSGD(SGD):  # pylint: disable=invalid-name
    """[DEPRECATED] Same as `SGD`. Left here for backward compatibility (as MXNet)."""


@register
class Test(Optimizer):
    """MXNet's test optimizer: ``w += rescale_grad * grad``; the state mirrors the weight."""

    def create_state(self, index, weight):
        return zeros_like(weight)

    def update(self, index, weight, grad, state):
        xp = array_module(weight)
        (g,) = self._buffers(weight, 1)
        xp.multiply(grad, self.rescale_grad, out=g)
        weight += g
        state[...] = weight
