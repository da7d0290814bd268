"""`AttrScope` (as mx.AttrScope) and MXNet's rules for attribute keys on graph nodes."""
import threading

from .base import MXNetError

# Keys MXNet stores as `__key__` when they are set by their plain name (its
# c_api kHiddenKeys); list_attr/attr_dict report both spellings.
HIDDEN_KEYS = ("ctx_group", "lr_mult", "wd_mult", "force_mirroring", "mirror_stage")


def hidden_key(key):
    """The key MXNet stores for `key`: `lr_mult` -> `__lr_mult__`, others unchanged.

    Raises MXNetError for `<name>_lr_mult`-style keys, which MXNet rejects.
    """
    for hidden in HIDDEN_KEYS:
        if key == hidden:
            return f"__{hidden}__"
        if key.endswith(hidden) and not (key.startswith("__") and key.endswith("__")):
            raise MXNetError(
                f"setting variable attributes with {key} is deprecated. please instead use\n"
                f"w = Variable({hidden}=...)\nsym = YourSymbolName({key[:-len(hidden) - 1]}=w)")
    return key


def is_meta_key(key):
    """`__key__` attributes are graph metadata, not operator parameters."""
    return key.startswith("__") and key.endswith("__") and len(key) > 4


def with_plain_hidden_keys(attrs):
    """attrs plus `lr_mult` for `__lr_mult__` etc., as MXNet's list_attr/attr_dict report."""
    out = dict(attrs)
    for hidden in HIDDEN_KEYS:
        if f"__{hidden}__" in attrs:
            out[hidden] = attrs[f"__{hidden}__"]
    return out


class AttrScope:
    """`with AttrScope(ctx_group='dev1'):` gives every symbol created inside these attributes.

    Keys are kept as given (`group='4'` stays `group`); hidden keys such as
    `ctx_group` become `__ctx_group__` when set on a node, as in MXNet.
    """

    _local = threading.local()

    def __init__(self, **kwargs):
        for value in kwargs.values():
            if not isinstance(value, str):
                raise ValueError(f"AttrScope values must be strings, received {value!r}")
        self._attr = dict(kwargs)
        self._old_scope = None

    def get(self, attr):
        """The scope's attributes merged under `attr` (explicit ones win)."""
        merged = dict(self._attr)
        merged.update(attr or {})
        return merged

    def __enter__(self):
        self._old_scope = AttrScope.current()
        merged = dict(self._old_scope._attr)
        merged.update(self._attr)
        self._attr = merged
        AttrScope._local.value = self
        return self

    def __exit__(self, *exc):
        AttrScope._local.value = self._old_scope

    @staticmethod
    def current():
        if getattr(AttrScope._local, "value", None) is None:
            AttrScope._local.value = AttrScope()
        return AttrScope._local.value
