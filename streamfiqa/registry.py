"""A small name → factory registry shared by the plug-in families."""
from __future__ import annotations

from typing import Callable, Generic, TypeVar

T = TypeVar("T")


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

    def create(self, name: str, **kwargs) -> T:
        """Build the plug-in ``name`` with ``kwargs``."""
        return self.get(name)(**kwargs)
