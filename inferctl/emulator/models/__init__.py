"""Each registered backend's stand-in on the embedded stack's local services server: a module here per name in
``lambdas.inference.backends.REGISTERED``, with its ``EMULATION``. Registering a backend stays one line there;
its emulation is found here by the same name."""

from __future__ import annotations

import importlib
from typing import Any

from inferctl.emulator.models.base import Emulation
from lambdas.contract.backends import REGISTERED


def emulation(name: str) -> Emulation:
    """The emulation of the registered backend ``name``."""
    module: Any = importlib.import_module(f"{__name__}.{name}")
    found: Emulation = module.EMULATION
    return found


def emulations() -> dict[str, Emulation]:
    """Every registered backend's emulation, by backend name."""
    return {name: emulation(name) for name in REGISTERED}
