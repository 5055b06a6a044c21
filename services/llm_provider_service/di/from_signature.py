"""`provide_class`: dishka builds a class from its signature, leaving its test seams alone."""

from collections.abc import Callable
from inspect import Parameter, Signature, signature
from typing import Any, get_type_hints

from dishka import provide
from dishka.dependency_source import CompositeDependencySource


def provide_class(cls: type[Any], *, provides: Any = None) -> CompositeDependencySource:
    """Like dishka's `provide(cls)` in a dishka class body, but only the parameters without a
    default are resolved.

    A default marks a test seam (a clock, an rng, a time offset, a size a test shrinks): the
    service always runs with it, so the container passes nothing for it. A parameter the
    service must be given therefore has no default.
    """
    factory: Callable[..., Any] = staticmethod(without_seams(cls))  # not a method of the class
    return provide(factory, provides=provides or cls)


def without_seams(cls: type[Any]) -> Callable[..., Any]:
    """A factory of `cls` whose signature is the constructor's parameters without a default
    (for `Provider.provide` on an instance, or `provide_class`)."""
    hints = get_type_hints(cls.__init__)
    required = [
        parameter.replace(kind=Parameter.KEYWORD_ONLY)
        for parameter in signature(cls).parameters.values()
        if parameter.default is Parameter.empty
    ]

    def build(**dependencies: Any) -> Any:
        return cls(**dependencies)

    build.__signature__ = Signature(required, return_annotation=cls)  # type: ignore[attr-defined]
    build.__annotations__ = {p.name: hints[p.name] for p in required} | {"return": cls}
    return build
