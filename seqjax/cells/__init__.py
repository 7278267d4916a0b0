"""Recurrent cells as records of pure functions (see ``seqjax.Cell``).

Every module of this package that declares ``__all__`` is a cell family and
has its public names re-exported here, so a new cell is one new file (plus
one test file, which the protocol suite in tests/cells picks up): nothing
else to edit. ``common`` and ``fused`` are helpers shared by the families.
"""

import importlib as _importlib
import pkgutil as _pkgutil

__all__: list[str] = []
for _info in sorted(_pkgutil.iter_modules(__path__), key=lambda m: m.name):
  _module = _importlib.import_module(f"{__name__}.{_info.name}")
  for _name in getattr(_module, "__all__", ()):
    globals()[_name] = getattr(_module, _name)
    __all__.append(_name)
del _info, _module, _name
