"""A small name → factory registry shared by the plug-in families."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Generic, TypeVar

T = TypeVar("T")

#: Plug-in arguments that name a file (weights, an exported model, a graph): :meth:`Registry.check` makes sure it is
#: there before anything loads.
FILE_ARGUMENTS = ("weights", "model_path", "graph_path", "onet_path")


class Registry(Generic[T]):
    """Maps names to factories; unknown names raise an error listing the valid ones."""

    def __init__(self, family: str) -> None:
        self.family = family
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator registering ``factory`` under ``name``."""
        def wrap(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories:
                raise ValueError(f"{self.family} {name!r} is already registered")
            self._factories[name] = factory
            return factory
        return wrap

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._factories)

    def get(self, name: str) -> Callable[..., T]:
        """Return the factory for ``name``."""
        try:
            return self._factories[name]
        except KeyError:
            raise ValueError(
                f"unknown {self.family} {name!r}; valid names: {', '.join(self.names())}") from None

    def check(self, name: str, **kwargs) -> Callable[..., T]:
        """The factory of ``name`` when it takes ``kwargs``; nothing is built (a config is checked in full before
        the first model loads).

        Raises:
            ValueError: an unknown name (the valid ones listed), an argument the plug-in does not take (those it takes
                listed), or one it needs and was not given.
            FileNotFoundError: a file argument (:data:`FILE_ARGUMENTS`) that names no file.
        """
        import inspect

        factory = self.get(name)
        params = inspect.signature(factory).parameters
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            unknown = sorted(set(kwargs) - set(params))
            if unknown:
                # YAML reads {weights:x.pth} (no space after the colon) as one key 'weights:x.pth' with no value
                glued = [k for k in unknown if ":" in k and kwargs[k] is None and k.split(":")[0] in params]
                hint = f" (YAML needs a space after the colon: {{{glued[0].replace(':', ': ', 1)}}})" if glued else ""
                raise ValueError(f"{self.family} {name!r}: unknown argument(s) {', '.join(unknown)}; valid: "
                                 f"{', '.join(params) or 'none'}{hint}")
        missing = missing_arguments(factory, kwargs)
        if missing:
            example = ";".join(f"{m}=…" for m in missing)
            raise ValueError(f"{self.family} {name!r}: expected the argument(s) {', '.join(missing)} (no default), "
                             f"found none; name them as {name}:{example}")
        for key in FILE_ARGUMENTS:
            # checked now: some plug-ins load at their first use (the second look at the first track's end), where a
            # mistyped path failed after the whole input had been read
            value = kwargs.get(key)
            if isinstance(value, (str, Path)) and not Path(value).expanduser().is_file():
                found = "a folder" if Path(value).expanduser().is_dir() else "nothing"
                raise FileNotFoundError(f"{self.family} {name!r}: expected a file at {key}={value}, found {found} "
                                        "there")
        return factory

    def check_config(self, key: str, name: str, args: dict | None = None) -> Callable[..., T]:
        """:meth:`check` of a plug-in a config names at ``key``, its arguments at ``{key}_args`` (an FR model at
        ``selection.second_look``, say): the errors name those keys.

        Raises:
            ValueError, FileNotFoundError: as :meth:`check`, prefixed with ``key`` and ``name``; a missing argument
                names ``{key}_args``.
        """
        args = args or {}
        try:
            missing = missing_arguments(self.get(name), args)
            if missing:
                raise ValueError(f"expected {key}_args to give {', '.join(missing)}, found "
                                 f"{', '.join(sorted(args)) or 'none'}")
            return self.check(name, **args)
        except (ValueError, FileNotFoundError) as exc:
            raise type(exc)(f"{key} {name!r}: {exc}") from None

    def create(self, name: str, **kwargs) -> T:
        """Build the plug-in ``name`` with ``kwargs``.

        Raises:
            ValueError: as :meth:`check`.
        """
        return self.check(name, **kwargs)(**kwargs)


def missing_arguments(factory: Callable, kwargs: dict) -> list[str]:
    """The parameters of ``factory`` without a default that ``kwargs`` does not give (a weights path, say)."""
    import inspect

    params = inspect.signature(factory).parameters.values()
    return [p.name for p in params if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            and p.name not in kwargs]
