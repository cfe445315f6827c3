"""One restricted unpickler for every pickle CARL Studio reads: datasets and checkpoints.

A pickle is a program: each GLOBAL it names is a callable the unpickler fetches and calls. This
unpickler fetches only names from one allow-list of plain-data builders (numpy arrays and
dtypes, builtin containers, torch tensors, storages and dtypes) plus inert stand-ins for the two
config classes the authors pickle (``easydict.EasyDict``, ``argparse.Namespace``). Anything
else (``os.system``, ``builtins.eval``, ``builtins.getattr``, ``subprocess.Popen``, dotted
attribute paths) is refused before it is fetched, so it never runs.

Two names are wrapped rather than admitted:
- ``torch.storage._load_from_bytes``: how ``pickle.dump`` writes a torch tensor's storage (the
  authors' dataset pickles hold ``frame_label`` as a tensor). Torch's own function calls
  ``torch.load(weights_only=False)`` on the embedded bytes; ours reads them with
  ``weights_only=True``.
- ``_codecs.encode``: how protocol 2 spells a ``bytes`` value; ours only decodes latin-1 text.

``load`` / ``loads`` read a pickle; ``TorchPickle`` is the ``pickle_module`` that ``torch.load``
takes. ``plain`` turns the stand-ins back into plain dicts.
"""

from __future__ import annotations

import collections
import functools
import io
import pickle
import re
import warnings
from typing import IO, Any

__all__ = ["EasyDictStandIn", "NamespaceStandIn", "RefusedGlobal", "TorchPickle", "load", "loads", "plain"]


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle names a callable outside the allow-list (it was not fetched, nor run)."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name
        super().__init__(f"GLOBAL {module}.{name} is not allowed")


class EasyDictStandIn(dict):
    """Inert stand-in for ``easydict.EasyDict``: a dict; its pickled attribute copies are dropped."""

    def __setstate__(self, state: Any) -> None:  # EasyDict pickles its items again as attributes
        pass


class NamespaceStandIn:
    """Inert stand-in for ``argparse.Namespace`` (the authors keep their CLI args in cfg)."""


def _load_storage_bytes(b: bytes) -> Any:
    """A storage that ``pickle.dump`` wrote, read by torch's weights-only loader, on the CPU."""
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # TypedStorage is deprecated; still what they wrote
            return torch.load(io.BytesIO(b), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL ([\w.]+)\.(\w+)", str(e))
        if found:  # the embedded bytes name code: say which, as for any other refused name
            raise RefusedGlobal(found.group(1), found.group(2)) from None
        raise


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


@functools.cache
def _allowed() -> dict[tuple[str, str], Any]:
    import numpy as np
    import torch
    from numpy._core import multiarray, numeric

    allowed: dict[tuple[str, str], Any] = {
        ("builtins", name): getattr(__import__("builtins"), name)
        for name in ("dict", "list", "tuple", "set", "frozenset", "int", "float", "complex")
    }
    allowed |= {
        ("builtins", "bytes"): bytes,
        ("builtins", "bytearray"): bytearray,
        ("_codecs", "encode"): _latin1_bytes,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("collections", "defaultdict"): collections.defaultdict,
        ("easydict", "EasyDict"): EasyDictStandIn,
        ("argparse", "Namespace"): NamespaceStandIn,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("torch._utils", "_rebuild_tensor"): torch._utils._rebuild_tensor,
        ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
        ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
        ("torch.storage", "_load_from_bytes"): _load_storage_bytes,
        ("torch", "Size"): torch.Size,
        ("torch", "device"): torch.device,
    }
    for core in ("numpy.core", "numpy._core"):  # numpy 1 and numpy 2 spell the module differently
        allowed[(f"{core}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{core}.multiarray", "scalar")] = multiarray.scalar
        allowed[(f"{core}.numeric", "_frombuffer")] = numeric._frombuffer  # type: ignore[attr-defined]
    for name in dir(torch):
        value = getattr(torch, name, None)
        # dtypes (torch.float32) and the legacy typed storages (torch.LongStorage) that tag
        # tensors in checkpoints and in storage bytes: data types, not functions.
        if isinstance(value, torch.dtype) or (name.endswith("Storage") and isinstance(value, type)):
            allowed[("torch", name)] = value
    import numpy.dtypes

    for name in dir(numpy.dtypes):
        if name.endswith("DType"):
            allowed[("numpy.dtypes", name)] = getattr(numpy.dtypes, name)
    return allowed


class Unpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that fetches only allow-listed names (``torch.load`` subclasses it)."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _allowed()[(module, name)]
        except KeyError:
            raise RefusedGlobal(module, name) from None


def load(file: IO[bytes]) -> Any:
    return Unpickler(file).load()


def loads(data: bytes) -> Any:
    return load(io.BytesIO(data))


class TorchPickle:
    """The slice of the ``pickle`` module interface that ``torch.load(pickle_module=...)`` uses."""

    __name__ = "carl_core.safe_pickle.TorchPickle"
    Unpickler = Unpickler
    UnpicklingError = pickle.UnpicklingError

    @staticmethod
    def load(f: Any, **kw: Any) -> Any:
        return Unpickler(f, **kw).load()


def plain(x: Any) -> Any:
    """Stand-ins (and containers holding them) back to plain dicts and lists; tensors untouched."""
    if isinstance(x, NamespaceStandIn):
        return plain(dict(vars(x)))
    if isinstance(x, dict):
        return {k: plain(v) for k, v in x.items()}
    if isinstance(x, list):
        return [plain(v) for v in x]
    return x
