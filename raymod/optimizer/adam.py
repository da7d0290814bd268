"""Adam and its variants Adamax and Nadam, with MXNet 1.x's formulas.

`t` is the per-index update count (after this step's increment); `lr`, `wd`
are per-index values. All three fold weight decay into the gradient:
``G = clip(rescale_grad*grad + wd*weight)``.
"""
import math

from ..context import array_module
from .optimizer import Optimizer, decayed_grad, ema, register, zeros_like

__all__ = ["Adam", "Adamax", "Nadam"]


class _MeanVarOptimizer(Optimizer):
    """Two moment states shaped like the weight: (mean, variance) or (m, u)."""

    def create_state(self, index, weight):
        return (zeros_like(weight), zeros_like(weight))


@register
class Adam(_MeanVarOptimizer):
    """The Adam optimizer (MXNet's `adam_update` kernel)::

        lr_t = lr * sqrt(1 - beta2**t) / (1 - beta1**t)
        mean = beta1*mean + (1-beta1)*G
        var  = beta2*var + (1-beta2)*G**2
        w    = w - lr_t * mean / (sqrt(var) + epsilon)

    Clipping applies only when `clip_gradient` is truthy (kernel rule).
    `lazy_update` is accepted for compatibility and changes nothing (no sparse arrays).
    """

    def __init__(self, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8,
                 lazy_update=True, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.lazy_update = lazy_update

    def update(self, index, weight, grad, state):
        lr, wd = self._prepare(index, weight, grad)
        t = self._index_update_count[index]
        lr *= math.sqrt(1. - self.beta2 ** t) / (1. - self.beta1 ** t)
        xp = array_module(weight)
        mean, var = state
        g, tmp = self._buffers(weight, 2)
        decayed_grad(weight, grad, self.rescale_grad, wd, self._kernel_clip(), g, tmp)
        ema(mean, g, self.beta1, tmp)
        xp.square(g, out=tmp)
        ema(var, tmp, self.beta2, tmp)
        xp.sqrt(var, out=tmp)
        tmp += self.epsilon
        xp.divide(mean, tmp, out=g)
        g *= lr
        weight -= g


@register
class Adamax(_MeanVarOptimizer):
    """AdaMax, Adam with the infinity norm (MXNet's Python implementation)::

        m = beta1*m + (1-beta1)*G
        u = maximum(beta2*u, |G|)
        w -= lr / (1 - beta1**t) * m / u

    Clipping applies whenever `clip_gradient` is not None.
    """

    def __init__(self, learning_rate=0.002, beta1=0.9, beta2=0.999, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta1 = beta1
        self.beta2 = beta2

    def update(self, index, weight, grad, state):
        lr, wd = self._prepare(index, weight, grad)
        t = self._index_update_count[index]
        lr /= (1. - self.beta1 ** t)
        xp = array_module(weight)
        m_t, u_t = state
        g, tmp = self._buffers(weight, 2)
        decayed_grad(weight, grad, self.rescale_grad, wd, self._python_clip(), g, tmp)
        ema(m_t, g, self.beta1, tmp)
        u_t *= self.beta2
        xp.abs(g, out=tmp)
        xp.maximum(u_t, tmp, out=u_t)
        xp.multiply(m_t, lr, out=tmp)
        tmp /= u_t
        weight -= tmp


@register
class Nadam(_MeanVarOptimizer):
    """Nesterov Adam (MXNet's Python implementation)::

        momentum_t   = beta1 * (1 - 0.5 * 0.96**(t * schedule_decay))
        momentum_t_1 = beta1 * (1 - 0.5 * 0.96**((t + 1) * schedule_decay))
        m_schedule  *= momentum_t;  m_schedule_next = m_schedule * momentum_t_1
        m = beta1*m + (1-beta1)*G;  v = beta2*v + (1-beta2)*G**2
        m_bar = (1-momentum_t) * G/(1-m_schedule) + momentum_t_1 * m/(1-m_schedule_next)
        w -= lr * m_bar / (sqrt(v / (1 - beta2**t)) + epsilon)

    As in MXNet, `m_schedule` is one number shared by all parameters: every
    update of any parameter advances it (replicated; it is saved with the
    optimizer by ``get_states(dump_optimizer=True)``).
    Clipping applies whenever `clip_gradient` is not None.
    """

    def __init__(self, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8,
                 schedule_decay=0.004, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.schedule_decay = schedule_decay
        self.m_schedule = 1.

    def update(self, index, weight, grad, state):
        lr, wd = self._prepare(index, weight, grad)
        t = self._index_update_count[index]
        xp = array_module(weight)
        g, tmp = self._buffers(weight, 2)
        decayed_grad(weight, grad, self.rescale_grad, wd, self._python_clip(), g, tmp)

        momentum_t = self.beta1 * (1. - 0.5 * (pow(0.96, t * self.schedule_decay)))
        momentum_t_1 = self.beta1 * (1. - 0.5 * (pow(0.96, (t + 1) * self.schedule_decay)))
        self.m_schedule = self.m_schedule * momentum_t
        m_schedule_next = self.m_schedule * momentum_t_1

        m_t, v_t = state
        ema(m_t, g, self.beta1, tmp)
        xp.square(g, out=tmp)
        ema(v_t, tmp, self.beta2, tmp)

        g /= (1. - self.m_schedule)            # grad_prime
        g *= (1. - momentum_t)
        xp.divide(m_t, 1. - m_schedule_next, out=tmp)   # m_t_prime
        tmp *= momentum_t_1
        g += tmp                               # m_t_bar
        xp.divide(v_t, 1. - pow(self.beta2, t), out=tmp)
        xp.sqrt(tmp, out=tmp)
        tmp += self.epsilon
        g *= lr
        g /= tmp
        weight -= g
