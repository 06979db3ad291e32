"""Job functions stored as ``module:qualname`` and found again to run.

A job function is a module-level function (plain or ``async def``), a
static or class method, or a method of a *runner class*: a class whose
instances the server gets from the activator, one scope per execution.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from backburner.cancellation import CancellationToken
from backburner.jobs.errors import JobFunctionError


def import_reference(reference: str) -> Any:
    """Import the object a ``module:qualname`` reference names.

    Raises:
        ImportError: the module does not import.
        AttributeError: the module has no such attribute.
        ValueError: the reference is not of the form ``module:qualname``.
    """
    module_name, sep, qualname = reference.partition(":")
    if not sep or not module_name or not qualname:
        raise ValueError(f"not a module:qualname reference: {reference!r}")
    found: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        found = getattr(found, part)
    return found


def reference_of(func: Callable[..., Any]) -> str:
    """Return the ``module:qualname`` under which a worker finds ``func``.

    Raises:
        JobFunctionError: ``func`` is a lambda, a local function, a method
            bound to an instance, defined in ``__main__``, or does not
            import back to the same object.
    """
    bound_to = getattr(func, "__self__", None)
    # A function of a C module (math.sqrt, time.sleep) is "bound" to its
    # module: it is a plain module-level function, not a method.
    if bound_to is not None and not isinstance(
        bound_to, (type, types.ModuleType)
    ):
        owner = type(bound_to).__qualname__
        raise JobFunctionError(
            f"{owner}.{func.__name__} is bound to an instance, which cannot "
            f"be stored; pass {owner}.{func.__name__} (the runner is then "
            "built by the server's activator)"
        )
    module = getattr(func, "__module__", None)
    qualname = getattr(func, "__qualname__", None)
    if not callable(func) or module is None or qualname is None:
        raise JobFunctionError(f"{func!r} is not a function or method")
    reference = f"{module}:{qualname}"
    if "<lambda>" in qualname or "<locals>" in qualname:
        raise JobFunctionError(
            f"{reference} is a lambda or a local function: job functions "
            "must be defined at module level to be found by a worker"
        )
    if module == "__main__":
        raise JobFunctionError(
            f"{reference} is defined in __main__, which a worker cannot "
            "import; move it to a module"
        )
    try:
        found = import_reference(reference)
    except (ImportError, AttributeError, ValueError) as error:
        raise JobFunctionError(
            f"{reference} cannot be imported back: {error}"
        ) from error
    if not _same_function(found, func):
        raise JobFunctionError(
            f"{reference} imports to a different object than the one given"
        )
    return reference


def _same_function(found: Any, func: Callable[..., Any]) -> bool:
    if found is func or found == func:
        return True
    return getattr(found, "__func__", found) is getattr(func, "__func__", func)


@dataclass(frozen=True, slots=True)
class ResolvedFunction:
    """A job function found from its reference.

    ``runner_class`` is set for methods of runner classes: the server gets
    an instance from the activator and calls ``method_name`` on it.
    Otherwise ``target`` is called directly.
    """

    reference: str
    target: Callable[..., Any]
    runner_class: type | None
    method_name: str | None
    is_async: bool
    token_parameters: tuple[str, ...]


@functools.lru_cache(maxsize=1024)
def resolve(reference: str) -> ResolvedFunction:
    """Find the job function a reference names, ready to be called.

    Raises:
        JobFunctionError: the reference no longer imports, or names
            something that is not callable.
    """
    module_name, _, qualname = reference.partition(":")
    try:
        found = import_reference(reference)
        owner = (
            import_reference(f"{module_name}:{qualname.rpartition('.')[0]}")
            if "." in qualname
            else None
        )
    except (ImportError, AttributeError, ValueError) as error:
        raise JobFunctionError(
            f"cannot import job function {reference}: "
            f"{type(error).__name__}: {error}"
        ) from error
    if not callable(found):
        raise JobFunctionError(f"{reference} is not callable")

    runner_class = None
    method_name = None
    if isinstance(owner, type):
        raw = inspect.getattr_static(owner, qualname.rpartition(".")[2])
        if inspect.isfunction(raw):
            runner_class = owner
            method_name = raw.__name__
    return ResolvedFunction(
        reference=reference,
        target=found,
        runner_class=runner_class,
        method_name=method_name,
        is_async=inspect.iscoroutinefunction(found),
        token_parameters=_token_parameters(found),
    )


def _token_parameters(func: Callable[..., Any]) -> tuple[str, ...]:
    try:
        signature = inspect.signature(func, eval_str=True)
    except (NameError, TypeError, ValueError):
        try:
            signature = inspect.signature(func)
        except (TypeError, ValueError):
            return ()
    return tuple(
        name
        for name, parameter in signature.parameters.items()
        if parameter.annotation is CancellationToken
        or parameter.annotation == "CancellationToken"
    )
