"""Every public exception of backburner pickles to an equal exception.

Process pools and ``multiprocessing`` pickle the exceptions they hand
back: one whose ``__init__`` takes other parameters than its message
would raise ``TypeError`` in the parent instead, or come back with its
message wrapped twice. The exceptions are found by walking the package,
so a new one is checked without being listed here.
"""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil
from typing import Any

import pytest

import backburner
from backburner.cancellation import CancellationTokenSource, OperationCancelled
from backburner.storage.base import JobState

# A value for each parameter name an exception's __init__ takes. A new
# parameter name makes the test fail until it is given one here.
_SAMPLES: dict[str, Any] = {
    "job_id": 3,
    "parent_id": 4,
    "holder": 5,
    "recurring_id": "nightly-report",
    "state": JobState.PROCESSING,
    "target": JobState.SUCCEEDED,
    "allowed": [JobState.ENQUEUED, JobState.SCHEDULED],
    "reason": "attempts ran out",
    "exception_type": "builtins.KeyError",
    "message": "'sku'",
    "timeout": 2.5,
    "delay": 30.0,
    "argument": "args[0]",
    "detail": "values of type object cannot be stored",
    "token": None,
}


def _public_modules() -> list[str]:
    found = pkgutil.walk_packages(backburner.__path__, "backburner.")
    # A __main__ module runs its program when imported.
    return [
        module.name for module in found if not module.name.endswith("__main__")
    ]


def _public_exceptions() -> list[type[BaseException]]:
    classes: dict[str, type[BaseException]] = {}
    for name in _public_modules():
        for _, value in inspect.getmembers(importlib.import_module(name)):
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__.startswith("backburner.")
                and not value.__name__.startswith("_")
            ):
                classes[f"{value.__module__}.{value.__qualname__}"] = value
    return [classes[name] for name in sorted(classes)]


def _sample(cls: type[BaseException]) -> BaseException:
    if not inspect.isfunction(cls.__init__):
        # BaseException's own __init__: it takes the message.
        return cls("something went wrong")
    parameters = list(inspect.signature(cls).parameters.values())
    missing = [p.name for p in parameters if p.name not in _SAMPLES]
    assert not missing, f"give _SAMPLES a value for {missing}"
    return cls(**{p.name: _SAMPLES[p.name] for p in parameters})


_EXCEPTIONS = _public_exceptions()


def test_the_walk_finds_the_exceptions_of_every_layer() -> None:
    names = {cls.__name__ for cls in _EXCEPTIONS}

    assert {
        "OperationCancelled",
        "JobNotFoundError",
        "UniqueKeyTakenError",
        "RecurringJobNotFoundError",
        "CorruptedJobError",
        "InvalidCronError",
        "MiddlewareMissingError",
        "UsageError",
    } <= names


@pytest.mark.parametrize(
    "cls", _EXCEPTIONS, ids=[cls.__name__ for cls in _EXCEPTIONS]
)
@pytest.mark.parametrize("protocol", [0, pickle.HIGHEST_PROTOCOL])
def test_an_exception_unpickles_with_its_message_and_attributes(
    cls: type[BaseException], protocol: int
) -> None:
    error = _sample(cls)

    copy = pickle.loads(pickle.dumps(error, protocol))

    assert type(copy) is cls
    assert str(copy) == str(error)
    assert copy.args == error.args
    assert vars(copy) == vars(error)


def test_a_cancellation_unpickles_without_its_token() -> None:
    # A token holds locks and callbacks of the process that made it.
    source = CancellationTokenSource()
    error = OperationCancelled("shutdown", source.token)

    copy = pickle.loads(pickle.dumps(error))

    assert copy.reason == "shutdown"
    assert copy.token is None
    assert error.token is source.token
