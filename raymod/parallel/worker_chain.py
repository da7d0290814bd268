"""Worker methods for chained executor groups (SequentialModule's stages).

A stage's worker takes the previous stage's outputs as one argument: on Ray
that argument is the ObjectRef another actor's call returned, which Ray
resolves before the call runs, so activations go from actor to actor and
never through the driver. Backward hands input gradients back the same way.
Micro-batches run on extra executors ("slots") that share the stage's
parameter, gradient and aux buffers but have their own inputs and
intermediates, so a stage can hold several micro-batches in flight.
"""
from types import SimpleNamespace

from ..context import to_numpy
from ..executor import Executor


def _host(arrays, copy):
    return [to_numpy(a).copy() if copy else to_numpy(a) for a in arrays]


class ChainStepsMixin:
    """Methods a DeviceWorker gains for chains (uses _exec, _execs, _root, forward, backward)."""

    def bind_slot(self, key, symbol, shapes, dtypes, grad_req, shared_key, param_names,
                  seed=None):
        """Bind `key` sharing only `shared_key`'s parameters, gradients and aux states.

        Inputs and their gradients get buffers of their own: slots of one
        stage run different micro-batches, which must not overwrite each other.
        """
        shared = self._exec(shared_key)
        params = SimpleNamespace(
            arg_dict={n: shared.arg_dict[n] for n in param_names},
            grad_dict={n: shared.grad_dict[n] for n in param_names if n in shared.grad_dict},
            aux_dict=dict(shared.aux_dict))
        exe = Executor.simple_bind(symbol, self.context, grad_req=grad_req, type_dict=dtypes,
                                   shared_exec=params, shapes=shapes, seed=seed)
        self._execs[key] = exe
        self._root[key] = self._root.get(shared_key, shared_key)
        return self._describe(exe)

    def chain_forward(self, key, prev_outputs, names, inputs, is_train, return_outputs,
                      copy=False):
        """Forward with `prev_outputs` (the previous stage's, in `names` order) as data.

        Returns host copies of the outputs when `return_outputs` (the handle
        the next stage receives), else None.
        """
        if prev_outputs is not None:
            inputs = dict(inputs or {})
            inputs.update(zip(names, prev_outputs, strict=True))
        self.forward(key, inputs, is_train)
        if not return_outputs:
            return None
        return _host(self._exec(key).outputs, copy)

    def chain_backward(self, key, out_grads, zero_grads, input_grad_names, copy=False):
        """Backward from `out_grads` (the next stage's input gradients, or None for losses).

        zero_grads: names of gradients to zero first (the first micro-batch of
        a batch, for parameters that accumulate over micro-batches).
        Returns the gradients of `input_grad_names` (host copies), or None.
        """
        exe = self._exec(key)
        for name in zero_grads or ():
            exe.grad_dict[name].fill(0)
        self.backward(key, out_grads)
        if input_grad_names is None:
            return None
        return _host([exe.grad_dict[n] for n in input_grad_names], copy)
