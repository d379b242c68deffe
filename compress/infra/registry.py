"""Dispatch from a config dataclass to the one function that implements it.

Nothing branches on method-name strings. Adding a method takes: its dataclass in the
group's module of :mod:`compress.config`, its entry in ``compress.config.store.SCHEMAS`` and its
YAML option (same name), a backend's ``SUPPORTED`` tuple for a quantization level, and one
function registered here by the dataclass (``tests/compress/backends/test_registry.py`` checks
that every supported level has a handler).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Registry:
    """Maps config types to handlers; a handler is found along the config type's MRO."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._handlers: dict[type, Callable[..., Any]] = {}

    def register(self, config_type: type) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def decorate(handler: Callable[..., Any]) -> Callable[..., Any]:
            if config_type in self._handlers:
                raise ValueError(f"{self.kind}: {config_type.__name__} is registered twice")
            self._handlers[config_type] = handler
            return handler

        return decorate

    @property
    def registered(self) -> frozenset[type]:
        """The config types that have a handler of their own."""
        return frozenset(self._handlers)

    def handler_for(self, config: object) -> Callable[..., Any]:
        for klass in type(config).__mro__:
            if klass in self._handlers:
                return self._handlers[klass]
        known = ", ".join(sorted(k.__name__ for k in self._handlers))
        raise TypeError(f"no {self.kind} handles {type(config).__name__}; known: {known}")

    def __call__(self, config: object, *args: Any, **kwargs: Any) -> Any:
        return self.handler_for(config)(config, *args, **kwargs)
