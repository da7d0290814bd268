"""Per-coordinate adaptive optimizers: RMSProp, AdaGrad, AdaDelta (MXNet 1.x formulas)."""
from ..context import array_module
from .optimizer import Optimizer, decayed_grad, ema, register, zeros_like

__all__ = ["RMSProp", "AdaGrad", "AdaDelta"]


@register
class RMSProp(Optimizer):
    """RMSProp, MXNet's `rmsprop_update` / `rmspropalex_update` kernels.

    ``G = clip(rescale_grad*grad + wd*w)`` (clipped when `clip_gradient` is truthy).

    Plain (Tieleman & Hinton)::

        n = (1-gamma1)*G**2 + gamma1*n
        w = w - lr * G / sqrt(n + epsilon)

    Centered (Graves)::

        n = (1-gamma1)*G**2 + gamma1*n
        g = (1-gamma1)*G + gamma1*g
        delta = gamma2*delta - lr * G / sqrt(n - g**2 + epsilon)
        w = w + delta

    Then, if `clip_weights` is truthy, `w` is clipped to ``[-clip_weights, clip_weights]``.

    Parameters
    ----------
    gamma1 : float, default 0.9
        Decay of the moving average of squared gradients.
    gamma2 : float, default 0.9
        The "momentum" factor (centered only).
    epsilon : float, default 1e-8
    centered : bool, default False
    clip_weights : float, optional
    """

    def __init__(self, learning_rate=0.001, gamma1=0.9, gamma2=0.9,
                 epsilon=1e-8, centered=False, clip_weights=None, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.gamma1 = gamma1
        self.gamma2 = gamma2
        self.centered = centered
        self.epsilon = epsilon
        self.clip_weights = clip_weights

    def create_state(self, index, weight):
        if self.centered:
            return (zeros_like(weight), zeros_like(weight), zeros_like(weight))  # n, g, delta
        return (zeros_like(weight),)  # n

    def update(self, index, weight, grad, state):
        lr, wd = self._prepare(index, weight, grad)
        xp = array_module(weight)
        g, tmp = self._buffers(weight, 2)
        decayed_grad(weight, grad, self.rescale_grad, wd, self._kernel_clip(), g, tmp)
        n = state[0]
        xp.square(g, out=tmp)
        ema(n, tmp, self.gamma1, tmp)
        if not self.centered:
            xp.add(n, self.epsilon, out=tmp)
            xp.sqrt(tmp, out=tmp)
            g /= tmp
            g *= lr
            weight -= g
        else:
            _, g_avg, delta = state
            ema(g_avg, g, self.gamma1, tmp)
            xp.square(g_avg, out=tmp)
            xp.subtract(n, tmp, out=tmp)
            tmp += self.epsilon
            xp.sqrt(tmp, out=tmp)
            g /= tmp
            g *= lr
            delta *= self.gamma2
            delta -= g
            weight += delta
        if self.clip_weights and self.clip_weights >= 0:
            xp.clip(weight, -self.clip_weights, self.clip_weights, out=weight)


@register
class AdaGrad(Optimizer):
    """AdaGrad (MXNet's dense Python path)::

        G = clip(rescale_grad * grad)        # clipped when clip_gradient is not None
        history += G**2
        w += -lr * (G / sqrt(history + eps) + wd*w)

    Parameters
    ----------
    eps : float, default 1e-7
        Added inside the square root for stability (stored as `float_stable_eps`).
    """

    def __init__(self, eps=1e-7, **kwargs):
        super().__init__(**kwargs)
        self.float_stable_eps = eps

    def create_state(self, index, weight):
        return zeros_like(weight)  # history

    def update(self, index, weight, grad, state):
        lr, wd = self._prepare(index, weight, grad)
        xp = array_module(weight)
        history = state
        g, tmp = self._buffers(weight, 2)
        xp.multiply(grad, self.rescale_grad, out=g)
        clip = self._python_clip()
        if clip is not None:
            xp.clip(g, -clip, clip, out=g)
        xp.square(g, out=tmp)
        history += tmp
        xp.add(history, self.float_stable_eps, out=tmp)
        xp.sqrt(tmp, out=tmp)
        g /= tmp                               # div
        xp.multiply(weight, wd, out=tmp)
        g += tmp
        g *= -lr
        weight += g


@register
class AdaDelta(Optimizer):
    """AdaDelta (MXNet's Python implementation; the learning rate is unused)::

        G = clip(rescale_grad * grad)        # clipped when clip_gradient is not None
        acc_g = rho*acc_g + (1-rho)*G**2
        delta = sqrt(acc_delta + epsilon) / sqrt(acc_g + epsilon) * G
        acc_delta = rho*acc_delta + (1-rho)*delta**2
        w -= delta + wd*w

    Deviation (quirk Q10): MXNet scales the caller's gradient buffer in place by
    `rescale_grad`; raymod never writes into the gradient, which may be read-only.

    Parameters
    ----------
    rho : float, default 0.90
        Decay rate for both squared gradients and delta.
    epsilon : float, default 1e-5
    """

    def __init__(self, rho=0.90, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.rho = rho
        self.epsilon = epsilon

    def create_state(self, index, weight):
        return (zeros_like(weight), zeros_like(weight))  # accumulated g, accumulated delta

    def update(self, index, weight, grad, state):
        _, wd = self._prepare(index, weight, grad)
        xp = array_module(weight)
        acc_g, acc_delta = state
        g, delta, tmp = self._buffers(weight, 3)
        xp.multiply(grad, self.rescale_grad, out=g)
        clip = self._python_clip()
        if clip is not None:
            xp.clip(g, -clip, clip, out=g)
        xp.square(g, out=tmp)
        ema(acc_g, tmp, self.rho, tmp)
        xp.add(acc_delta, self.epsilon, out=delta)
        xp.sqrt(delta, out=delta)
        xp.add(acc_g, self.epsilon, out=tmp)
        xp.sqrt(tmp, out=tmp)
        delta /= tmp
        delta *= g                             # current delta
        xp.square(delta, out=tmp)
        ema(acc_delta, tmp, self.rho, tmp)
        xp.multiply(weight, wd, out=tmp)
        tmp += delta
        weight -= tmp
