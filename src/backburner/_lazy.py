"""Names of a package imported on first use (:pep:`562`).

Shared by the module ``__getattr__`` of :mod:`backburner` and of
:mod:`backburner.jobs`, which import their names only when asked: see
their docstrings for why.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, MutableMapping
from typing import Any


def resolve(
    namespace: MutableMapping[str, Any],
    package: str,
    name: str,
    homes: Mapping[str, str],
) -> Any:
    """The value of ``package.name``: a name from its home module in
    ``homes`` (then kept in ``namespace``, the package's globals, so that
    later lookups skip this), or a submodule not imported yet, as if the
    package had imported it.

    Raises:
        AttributeError: ``name`` is neither.
    """
    home = homes.get(name)
    if home is not None:
        value = getattr(importlib.import_module(home), name)
        namespace[name] = value
        return value
    try:
        return importlib.import_module(f"{package}.{name}")
    except ModuleNotFoundError as error:
        if error.name != f"{package}.{name}":
            raise  # The submodule exists; something it imports does not.
    raise AttributeError(f"module {package!r} has no attribute {name!r}")
