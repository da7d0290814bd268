"""A registry of classes by lower-cased name, with MXNet's `create` forms (mx.registry).

`create` accepts an instance (returned as is), a name plus constructor
arguments, a config dict ``{nickname: name, **kwargs}``, or a JSON string in
either the ``'["name", {kwargs}]'`` or the ``'{"nickname": ...}'`` form.
"""
import json
import warnings


class Registry:
    def __init__(self, base, nickname, error=ValueError, type_error=TypeError):
        self.base = base            # every registered class subclasses this
        self.nickname = nickname    # 'initializer', 'metric': the config key, in messages
        self.error = error          # raised for bad arguments to create
        self.type_error = type_error
        self.entries = {}

    def register(self, klass, name=None):
        """Register `klass` under `name` (default: its class name), lower-cased."""
        if not (isinstance(klass, type) and issubclass(klass, self.base)):
            raise TypeError(f"Can only register subclass of {self.base.__name__}, "
                            f"received {klass!r}")
        name = (klass.__name__ if name is None else name).lower()
        old = self.entries.get(name)
        if old is not None and old is not klass:
            warnings.warn(f"New {self.nickname} {klass.__module__}.{klass.__name__} registered "
                          f"with name {name} is overriding existing {self.nickname} "
                          f"{old.__module__}.{old.__name__}", UserWarning, stacklevel=3)
        self.entries[name] = klass
        return klass

    def alias(self, *aliases):
        """Class decorator registering the class under each of `aliases` too."""
        def reg(klass):
            for name in aliases:
                self.register(klass, name)
            return klass
        return reg

    def create(self, *args, **kwargs):
        if args:
            spec, args = args[0], args[1:]
        elif self.nickname in kwargs:
            spec = kwargs.pop(self.nickname)
        else:
            raise TypeError(f"create() needs a {self.nickname}: a name, a config or an instance")
        if isinstance(spec, self.base):
            if args or kwargs:
                raise self.error(f"{self.nickname} is already an instance. "
                                 f"Additional arguments are invalid")
            return spec
        if isinstance(spec, dict):
            return self.create(**spec)
        if not isinstance(spec, str):
            raise self.type_error(f"{self.nickname} must be of string type, received "
                             f"{type(spec).__name__}")
        if spec.startswith(("[", "{")):
            if args or kwargs:
                raise self.error(f"a JSON {self.nickname} string takes no further arguments")
            loaded = json.loads(spec)
            if isinstance(loaded, list):
                return self.create(loaded[0], **loaded[1])
            return self.create(**loaded)
        name = spec.lower()
        if name not in self.entries:
            raise self.error(f"{name} is not registered. Please register with "
                             f"{self.nickname}.register first (known: {sorted(self.entries)})")
        return self.entries[name](*args, **kwargs)
