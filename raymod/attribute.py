"""`AttrScope`: attributes given to every symbol created inside the scope (as mx.AttrScope)."""
import threading


class AttrScope:
    """`with AttrScope(ctx_group='dev1'):` adds `__ctx_group__='dev1'` to new symbols."""

    _local = threading.local()

    def __init__(self, **kwargs):
        for value in kwargs.values():
            if not isinstance(value, str):
                raise ValueError(f"AttrScope values must be strings, received {value!r}")
        self._attr = {dunder(k): v for k, v in kwargs.items()}
        self._old_scope = None

    def get(self, attr):
        """The scope's attributes merged under `attr` (explicit ones win)."""
        if not self._attr:
            return dict(attr or {})
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


def dunder(key):
    """`ctx_group` -> `__ctx_group__`; keys already in that form are kept."""
    if key.startswith("__") and key.endswith("__"):
        return key
    return f"__{key}__"
