"""Automatic node names, as `mx.name`: NameManager (per-hint counters) and Prefix."""
import threading


class NameManager:
    """Gives `<hint><n>` names with a counter per hint; `with NameManager():` opens a scope."""

    _local = threading.local()

    def __init__(self):
        self._counter = {}
        self._old_manager = None

    def get(self, name, hint):
        if name:
            return name
        n = self._counter.get(hint, 0)
        self._counter[hint] = n + 1
        return f"{hint}{n}"

    def __enter__(self):
        self._old_manager = NameManager.current()
        NameManager._local.value = self
        return self

    def __exit__(self, *exc):
        NameManager._local.value = self._old_manager

    @staticmethod
    def current():
        if getattr(NameManager._local, "value", None) is None:
            NameManager._local.value = NameManager()
        return NameManager._local.value


class Prefix(NameManager):
    """Prefixes every name, given or automatic: `with Prefix('enc_'):`."""

    def __init__(self, prefix):
        super().__init__()
        self._prefix = prefix

    def get(self, name, hint):
        return self._prefix + super().get(name, hint)
