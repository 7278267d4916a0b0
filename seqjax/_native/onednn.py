"""oneDNN's RNN primitives as CPU kernels for ``unroll(..., implementation="onednn")``.

PyTorch's CPU ``nn.LSTM`` is oneDNN's RNN primitive (with
``torch.backends.mkldnn.enabled = False`` its inference is 3x slower here).
XLA:CPU cannot fuse a recurrence's per-step work into one kernel, so this
module offers the same primitives to JAX for the LSTM, the GRU (reset gate
after the recurrent product, oneDNN's linear-before-reset GRU) and the Elman
RNN: ``onednn_rnn.cc`` registers XLA FFI custom calls (inference, training
forward, backward), compiled with the system C++ compiler on first use
against the headers that ship with jaxlib and the ``onednn-cpu-gomp`` /
``onednn-devel-cpu-gomp`` wheels (``pip install "seqjax[onednn]"``), and
cached under ``$SEQJAX_CACHE/native`` (default ``~/.cache/seqjax/native``). ``SEQJAX_ONEDNN_ROOT`` points at another
oneDNN (a prefix with ``include/oneapi/dnnl/dnnl.hpp`` and
``lib/libdnnl.so``); ``CXX`` picks the compiler.

The kernel is opt-in and CPU-only: float32, no mask or reset (padded batches
use the ``"fast"`` path). ``availability()`` says whether it can run here.
oneDNN threads with OpenMP; ``OMP_NUM_THREADS`` sets its thread count.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import math
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import threading
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from seqjax.data import cache

_SOURCE = pathlib.Path(__file__).with_name("onednn_rnn.cc")
_TARGETS = ("SeqjaxLstmInference", "SeqjaxLstmTraining", "SeqjaxLstmBackward",
            "SeqjaxHInference", "SeqjaxHTraining", "SeqjaxHBackward")
# The `cell` codes of onednn_rnn.cc.
_LSTM, _GRU, _RNN_TANH, _RNN_RELU = 0, 1, 2, 3
_INSTALL_HINT = ('install oneDNN with pip install "seqjax[onednn]" (the '
                 "onednn-cpu-gomp and onednn-devel-cpu-gomp wheels) or set "
                 "SEQJAX_ONEDNN_ROOT to a prefix with include/oneapi/dnnl/dnnl.hpp "
                 "and lib/libdnnl.so")


class OneDNNUnavailable(RuntimeError):
  """The oneDNN kernel cannot be built or loaded here; the message says why."""


def _candidate_roots() -> list[pathlib.Path]:
  roots = []
  if os.environ.get("SEQJAX_ONEDNN_ROOT"):
    roots.append(pathlib.Path(os.environ["SEQJAX_ONEDNN_ROOT"]))
  # pip installs the wheels' data files (include/, lib/) under the prefix.
  return roots + [pathlib.Path(sys.prefix), pathlib.Path("/usr/local"), pathlib.Path("/usr")]


def _onednn_root(candidates: Optional[list[pathlib.Path]] = None) -> pathlib.Path:
  """The first prefix with oneDNN's headers and library."""
  candidates = _candidate_roots() if candidates is None else candidates
  for root in candidates:
    if ((root / "include" / "oneapi" / "dnnl" / "dnnl.hpp").is_file() and
        any((root / "lib").glob("libdnnl.so*"))):
      return root
  raise OneDNNUnavailable(
      f"implementation='onednn' needs oneDNN, not found under "
      f"{', '.join(str(c) for c in candidates)}: {_INSTALL_HINT}")


def _compiler() -> str:
  for name in (os.environ.get("CXX"), "g++", "c++", "clang++"):
    if name and shutil.which(name):
      return shutil.which(name)
  raise OneDNNUnavailable("implementation='onednn' compiles a small C++ kernel on first use "
                          "and found no C++ compiler (set CXX, or install g++)")


def _build() -> pathlib.Path:
  root, cxx = _onednn_root(), _compiler()
  jax_include = pathlib.Path(jax.ffi.include_dir())
  lib_dir = (root / "lib").resolve()
  source = _SOURCE.read_bytes()
  version_h = root / "include" / "oneapi" / "dnnl" / "dnnl_version.h"
  key = hashlib.sha256(b"\0".join([
      source, str(root.resolve()).encode(), cxx.encode(), jax.__version__.encode(),
      (jax_include / "xla" / "ffi" / "api" / "api.h").read_bytes(),
      version_h.read_bytes() if version_h.is_file() else b""])).hexdigest()[:16]
  out_dir = cache.default_cache_dir() / "native"
  target = out_dir / f"libseqjax_onednn_{key}.so"
  if target.is_file():
    return target
  # Compile to a private name, then rename: concurrent builds (pytest -n 2)
  # each produce a complete library and the last rename wins.
  try:
    out_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=out_dir)
  except OSError as e:
    raise OneDNNUnavailable(f"cannot write the oneDNN kernel to {out_dir} ({e}); set "
                            f"SEQJAX_CACHE to a writable folder") from e
  os.close(fd)
  command = [cxx, "-O2", "-std=c++17", "-shared", "-fPIC", "-w",
             f"-I{jax_include}", f"-I{root / 'include'}", str(_SOURCE), "-o", tmp,
             f"-L{lib_dir}", "-ldnnl", f"-Wl,-rpath,{lib_dir}"]
  try:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
      raise OneDNNUnavailable(f"compiling the oneDNN kernel failed ({' '.join(command)}):\n"
                              f"{result.stderr[-4000:]}")
    os.chmod(tmp, 0o755)
    os.replace(tmp, target)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
  return target


_lock = threading.Lock()
_library: Optional[ctypes.CDLL] = None
_library_path: Optional[pathlib.Path] = None


def _load() -> ctypes.CDLL:
  """Builds (once, cached on disk), loads and registers the kernel."""
  global _library, _library_path
  with _lock:
    if _library is None:
      path = _build()
      try:
        library = ctypes.CDLL(str(path))
      except OSError as e:
        raise OneDNNUnavailable(f"cannot load the oneDNN kernel {path}: {e}") from e
      for name in _TARGETS:
        jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(getattr(library, name)),
                                    platform="cpu")
      library.seqjax_rnn_workspace_bytes.restype = ctypes.c_int64
      library.seqjax_rnn_workspace_bytes.argtypes = ([ctypes.c_int32] + [ctypes.c_int64] * 4
                                                     + [ctypes.c_bool] * 2)
      _library, _library_path = library, path
  return _library


def availability() -> tuple[bool, str]:
  """``(True, path of the built kernel)`` or ``(False, why not)``; builds it if needed."""
  try:
    _load()
    return True, str(_library_path)
  except OneDNNUnavailable as e:
    return False, str(e)


def check_flags(mask, restart) -> None:
  """The kernels run whole sequences: no ``mask`` or ``reset``."""
  if mask is not None or restart is not None:
    raise ValueError("implementation='onednn' supports neither mask nor reset; use "
                     "implementation='fast' for padded or packed batches")


def _check(x: jax.Array, h0: jax.Array, w_h: jax.Array, layout) -> None:
  if jax.default_backend() != "cpu":
    raise ValueError(f"implementation='onednn' runs on CPU only; the default backend is "
                     f"{jax.default_backend()!r} (use implementation='fast' or 'auto')")
  for name, a in (("xs", x), ("carry", h0), ("params", w_h)):
    if a.dtype != jnp.float32:
      raise TypeError(f"implementation='onednn' supports float32 only; {name} is {a.dtype}")
  if x.shape[0] == 0 or x.shape[1] == 0:
    shape = "(B, T, D)" if layout[0] else "(T, B, D)"
    raise ValueError(f"implementation='onednn' needs at least one time step and one "
                     f"sequence; xs has shape {shape} = {x.shape}")


# ``layout`` is ``(batch_major, reverse)``: x is (B, T, D) or (T, B, D), and
# the primitive runs left to right or right to left. Both are attributes of
# the FFI calls; neither copies data.


def _shapes(layout, x, w_h):
  hidden = w_h.shape[0]
  batch = x.shape[0] if layout[0] else x.shape[1]
  return (jax.ShapeDtypeStruct(x.shape[:2] + (hidden,), x.dtype),
          jax.ShapeDtypeStruct((batch, hidden), x.dtype))


def _call(name, layout, results, *args, **attributes):
  return jax.ffi.ffi_call(name, results, vmap_method="sequential")(
      *args, batch_major=bool(layout[0]), reverse=bool(layout[1]), **attributes)


def _workspace(cell: int, layout, x, w_h) -> jax.ShapeDtypeStruct:
  batch, t = x.shape[:2] if layout[0] else x.shape[1::-1]
  d, h = x.shape[2], w_h.shape[0]
  size = _load().seqjax_rnn_workspace_bytes(cell, t, batch, d, h, *map(bool, layout))
  if size < 0:
    raise ValueError(f"oneDNN has no kernel for cell {cell}, T={t}, B={batch}, D={d}, H={h}")
  return jax.ShapeDtypeStruct((size,), jnp.uint8)


def _like(arrays):
  return tuple(jax.ShapeDtypeStruct(a.shape, a.dtype) for a in arrays)


def _target(cell: int) -> tuple[str, dict]:
  """The FFI target prefix and attributes of a cell: the LSTM's calls carry
  (h, c); the GRU's and RNN's carry h and name the cell in an attribute."""
  return ("SeqjaxLstm", {}) if cell == _LSTM else ("SeqjaxH", {"cell": np.int32(cell)})


# ``carry`` is a tuple: (h0, c0) for the LSTM, (h0,) otherwise.


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _rnn(cell, layout, x, carry, w_x, w_h, b):
  _load()
  prefix, attributes = _target(cell)
  ys, state = _shapes(layout, x, w_h)
  y, *final = _call(prefix + "Inference", layout, (ys,) + (state,) * len(carry),
                    x, *carry, w_x, w_h, b, **attributes)
  return y, tuple(final)


def _rnn_fwd(cell, layout, x, carry, w_x, w_h, b):
  _load()
  prefix, attributes = _target(cell)
  ys, state = _shapes(layout, x, w_h)
  y, *final, ws = _call(prefix + "Training", layout,
                        (ys,) + (state,) * len(carry) + (_workspace(cell, layout, x, w_h),),
                        x, *carry, w_x, w_h, b, **attributes)
  final = tuple(final)
  return (y, final), (x, carry, w_x, w_h, b, y, final, ws)


def _rnn_bwd(cell, layout, saved, cotangents):
  x, carry, w_x, w_h, b, y, final, ws = saved
  d_y, d_final = cotangents
  prefix, attributes = _target(cell)
  dx, *d_carry, dw_x, dw_h, db = _call(
      prefix + "Backward", layout, _like((x, *carry, w_x, w_h, b)),
      x, *carry, w_x, w_h, b, y, *final, ws, d_y, *d_final, **attributes)
  return dx, tuple(d_carry), dw_x, dw_h, db


_rnn.defvjp(_rnn_fwd, _rnn_bwd)


def _run(cell, w_x, w_h, b, carry, xs, reverse, time_major):
  """Flattens the batch axes to one and runs oneDNN's ``cell`` on (T, B, D) or
  (B, T, D) inputs; returns ``(final carry tuple, ys)``."""
  w_x, w_h, b, xs = (jnp.asarray(a) for a in (w_x, w_h, b, xs))
  carry = tuple(jnp.asarray(a) for a in carry)
  hidden = w_h.shape[0]
  if time_major:
    batch_shape = tuple(xs.shape[1:-1])
    x = xs.reshape(xs.shape[0], math.prod(batch_shape), xs.shape[-1])
  else:
    batch_shape = tuple(xs.shape[:-2])
    x = xs.reshape((math.prod(batch_shape),) + xs.shape[-2:])
  carry = tuple(c.reshape(math.prod(batch_shape), -1) for c in carry)
  layout = (not time_major, bool(reverse))
  _check(x, carry[0], w_h, layout)
  y, final = _rnn(cell, layout, x, carry, w_x, w_h, b)
  ys_shape = ((xs.shape[0],) + batch_shape if time_major else batch_shape + xs.shape[-2:-1])
  return (tuple(f.reshape(batch_shape + (hidden,)) for f in final),
          y.reshape(ys_shape + (hidden,)))


def lstm_sequence(w_x, w_h, b, forget_bias: float, carry, xs, *, reverse: bool,
                  time_major: bool = True):
  """The LSTM of ``seqjax.cells.lstm`` (no peepholes) over a sequence, by oneDNN.

  Args:
    w_x: (D, 4H); w_h: (H, 4H); b: (4H,), gates i, f, g, o (oneDNN's order).
    forget_bias: added to the forget gate's bias.
    carry: ``(h, c)``, each (*B, H).
    xs: inputs (T, *B, D) if ``time_major`` else (*B, T, D), float32.
    reverse: process time right to left; outputs stay in input order.
    time_major: the layout of ``xs`` and ``ys`` (oneDNN reads both).

  Returns:
    ``((h_T, c_T), ys)`` with ys (T, *B, H) or (*B, T, H).
  """
  hidden = jnp.shape(w_h)[0]
  if forget_bias:
    b = jnp.asarray(b).at[hidden:2 * hidden].add(forget_bias)
  return _run(_LSTM, w_x, w_h, b, carry, xs, reverse, time_major)


def gru_sequence(w_x, w_h, b, b_hn, h, xs, *, reverse: bool, time_major: bool = True):
  """The GRU of ``seqjax.cells.gru`` (``reset_after=True``) over a sequence, by oneDNN.

  seqjax stacks the gates r, z, n; oneDNN's linear-before-reset GRU wants
  u (= z), r, n, with a fourth bias block for ``b_hn``. The columns are
  permuted here, so autodiff maps the gradients back.

  Args:
    w_x: (D, 3H); w_h: (H, 3H); b: (3H,), gates r, z, n; b_hn: (H,).
    h: (*B, H) initial state.
    xs: inputs (T, *B, D) if ``time_major`` else (*B, T, D), float32.
    reverse: process time right to left; outputs stay in input order.
    time_major: the layout of ``xs`` and ``ys`` (oneDNN reads both).

  Returns:
    ``((h_T,), ys)`` with ys (T, *B, H) or (*B, T, H).
  """
  hidden = jnp.shape(w_h)[0]

  def zrn(w):
    w = jnp.asarray(w)
    blocks = w.reshape(w.shape[:-1] + (3, hidden))
    return blocks[..., (1, 0, 2), :].reshape(w.shape)

  bias = jnp.concatenate([zrn(b), jnp.asarray(b_hn)])
  return _run(_GRU, zrn(w_x), zrn(w_h), bias, (h,), xs, reverse, time_major)


def rnn_sequence(w_x, w_h, b, activation: str, h, xs, *, reverse: bool,
                 time_major: bool = True):
  """The Elman RNN of ``seqjax.cells.rnn`` (tanh or relu) over a sequence, by oneDNN.

  Args:
    w_x: (D, H); w_h: (H, H); b: (H,).
    activation: ``"tanh"`` or ``"relu"``.
    h: (*B, H) initial state.
    xs: inputs (T, *B, D) if ``time_major`` else (*B, T, D), float32.
    reverse: process time right to left; outputs stay in input order.
    time_major: the layout of ``xs`` and ``ys`` (oneDNN reads both).

  Returns:
    ``((h_T,), ys)`` with ys (T, *B, H) or (*B, T, H).
  """
  code = {"tanh": _RNN_TANH, "relu": _RNN_RELU}[activation]
  return _run(code, w_x, w_h, b, (h,), xs, reverse, time_major)
