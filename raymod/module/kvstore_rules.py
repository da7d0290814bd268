"""MXNet's rules for choosing a kvstore and applying an update (reference 3.4, 3.6)."""
import numpy as np

_BIG_PARAM = 16 * 1024 * 1024   # 'local' with a larger parameter updates on the devices


def create_kvstore(kvstore, num_device, arg_params):
    """(kvstore or None, update_on_kvstore) exactly as MXNet's _create_kvstore."""
    from ..parallel import kvstore as kvs
    update_on_kvstore = True
    if kvstore is None:
        kv = None
    elif isinstance(kvstore, kvs.KVStore) or hasattr(kvstore, "pushpull"):
        kv = kvstore
    elif isinstance(kvstore, str):
        if num_device == 1 and "dist" not in kvstore:
            kv = None                       # one device never uses a kvstore (Q6)
        else:
            kv = kvs.create(kvstore)
            if kvstore == "local":
                largest = max((int(np.prod(p.shape)) for p in arg_params.values()), default=0)
                if largest > _BIG_PARAM:
                    update_on_kvstore = False
    else:
        raise TypeError("kvstore must be KVStore, str or None")
    if kv is None:
        update_on_kvstore = False
    else:
        update_on_kvstore &= kv.is_capable("optimizer")
    return kv, update_on_kvstore


def update_params(group, kvstore, update_on_kvstore):
    """One optimizer step over the group's devices.

    - update on kvstore: the kvstore sums the devices' gradients, applies the
      optimizer once to its master weights, and every device gets the result;
    - kvstore without update: devices get the summed gradient, then each
      applies the same optimizer step itself;
    - no kvstore: each device steps on its own gradient (Q5).

    Ray worker groups take the step into the batch's fused call instead.
    """
    if group.schedule_update(kvstore, update_on_kvstore):
        return
    if kvstore is None:
        group.update()
        return
    grads = group.get_grads()
    names = list(grads[0])
    if update_on_kvstore:
        for name in names:
            kvstore.push(name, [g[name] for g in grads])
        group.set_params({name: kvstore.value(name) for name in names}, None)
        return
    summed = {}
    for name in names:
        kvstore.push(name, [g[name] for g in grads])
        summed[name] = kvstore.value(name)
    group.set_grads(summed)
    group.update()
