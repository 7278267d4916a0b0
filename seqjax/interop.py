"""Weights in and out of PyTorch and Flax: ``nn.LSTM``/``nn.GRU``/``nn.RNN`` and Flax cells.

PyTorch (torch is not needed: state dicts are taken and returned as arrays
keyed as torch names them, anything ``np.asarray`` accepts)::

  layer, params = seqjax.interop.from_torch(module.state_dict(), module.mode)
  carry, ys = layer.apply(params, xs, mask=mask)        # = module(packed xs)
  state = seqjax.interop.to_torch(params, "lstm", forget_bias=0.0)
  module.load_state_dict({k: torch.as_tensor(v) for k, v in state.items()})

Flax (``nn.LSTMCell``, ``nn.OptimizedLSTMCell``, ``nn.GRUCell``)::

  cell, params = seqjax.interop.from_flax(variables)    # variables = flax_cell.init(...)
  variables = seqjax.interop.to_flax(params, forget_bias=0.0)

Weight mappings (PyTorch stores ``(G*H, D)`` weights applied as ``x W^T``;
seqjax stores ``(D, G*H)`` applied as ``x W``; gate blocks are in PyTorch's
order in both: LSTM ``i, f, g, o``, GRU ``r, z, n``; G = 4, 3, 1 for the
LSTM, the GRU and the RNN)::

  w_x = weight_ih_l{k}.T           (D, G*H)   (D = input_size, or H * directions for k > 0)
  w_h = weight_hh_l{k}.T           (H, G*H)
  LSTM, RNN:  b = bias_ih_l{k} + bias_hh_l{k}                       (G*H,)
  GRU:        b = bias_ih_l{k} + [b_hr, b_hz, 0],  b_hn = b_hh_n    (3H,), (H,)

The GRU's ``b_hn`` (the candidate's recurrent bias) sits inside the reset
product, ``n = tanh(x W_xn + b_in + r * (h W_hn + b_hn))``, so it cannot be
added into ``b``: seqjax's ``gru(reset_after=True)`` keeps it as ``b_hn``.
seqjax's ``lstm`` adds ``forget_bias`` (1.0 by default) to the forget gate on
top of ``b``; PyTorch and Flax add nothing, so every converted LSTM is
``lstm(H, forget_bias=0.0)``, and converting a seqjax LSTM out needs the
``forget_bias`` it was built with, which is folded into the forget block of
the bias (there is no default: a silent 0 would change the model).

Layer ``k``, direction ``_reverse`` of a torch module map to the seqjax
layers as PyTorch computes them: the reverse direction reads the sequence
right to left, and with padding (``pack_padded_sequence`` there, ``mask``
here) each sequence's reverse pass starts at its own last real step.
``h_n[2 * k + d]`` (``d = 1`` for ``_reverse``) is the final carry of layer
``k``'s direction ``d``.

Checks: every array is compared with the shape its key must have, with a
one-line error naming the key, the shape received and the shape expected
(and saying when the array looks transposed). A square weight cannot be
checked this way: an RNN's ``(H, H)`` recurrent weight, or an input weight
with ``D == G*H``, stored transposed has the right shape and converts without
error into a different model. Pass arrays exactly as the other library
stores them; these converters do every transpose.

References:
  PyTorch ``nn.LSTM``, ``nn.GRU``, ``nn.RNN``:
  https://pytorch.org/docs/stable/generated/torch.nn.LSTM.html
  Flax ``nn.LSTMCell``, ``nn.GRUCell``:
  https://flax.readthedocs.io/en/latest/api_reference/flax.linen/layers.html
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Optional

import jax
import jax.numpy as jnp
import numpy as np

from seqjax import checks
from seqjax import layers as seqjax_layers
from seqjax.cells.gru import gru
from seqjax.cells.lstm import lstm
from seqjax.cells.rnn import rnn
from seqjax.types import Array, Cell, Implementation, Params

__all__ = ["KINDS", "torch_cell", "from_torch", "to_torch", "from_flax", "to_flax"]

#: Recurrence kinds, as PyTorch's ``module.mode`` names them (case-insensitive),
#: and the number of gate blocks G of each.
KINDS = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}

_TORCH_KEY = re.compile(r"^(weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)_l(\d+)(_reverse)?$")
_SUFFIXES = ("", "_reverse")
_CELL_KEYS = {"lstm": ("w_x", "w_h", "b"), "gru": ("w_x", "w_h", "b", "b_hn"),
              "rnn_tanh": ("w_x", "w_h", "b"), "rnn_relu": ("w_x", "w_h", "b")}
_FLAX_LSTM = {"ii": ("kernel",), "if": ("kernel",), "ig": ("kernel",), "io": ("kernel",),
              "hi": ("kernel", "bias"), "hf": ("kernel", "bias"),
              "hg": ("kernel", "bias"), "ho": ("kernel", "bias")}
_FLAX_GRU = {"ir": ("kernel", "bias"), "iz": ("kernel", "bias"), "in": ("kernel", "bias"),
             "hr": ("kernel",), "hz": ("kernel",), "hn": ("kernel", "bias")}


def _kind(kind: Any) -> str:
  if not isinstance(kind, str) or kind.lower() not in KINDS:
    raise ValueError(f"kind must be one of {tuple(KINDS)} (PyTorch's module.mode, "
                     f"any case), got {kind!r}")
  return kind.lower()


def _array(value: Any) -> Array:
  """A jax array of ``value``; jax arrays (and tracers) pass through, so that
  the conversion can be differentiated."""
  if isinstance(value, jax.Array):
    return value
  return jnp.asarray(np.asarray(value))


def _check_shape(where: str, value: Any, expected: tuple[int, ...], layout: str) -> None:
  shape = checks.shape_of(value)
  if shape == expected:
    return
  hint = ""
  if len(shape) == 2 and shape[::-1] == expected:
    hint = " (it looks transposed)"
  raise ValueError(f"{where} has shape {shape}, expected {expected} = {layout}{hint}")


def torch_cell(kind: str, hidden_size: int, *, dtype=jnp.float32) -> Cell:
  """The seqjax cell that computes one direction of one layer of PyTorch's module.

  ``"lstm"``: ``seqjax.cells.lstm(hidden_size, forget_bias=0.0)``;
  ``"gru"``: ``seqjax.cells.gru(hidden_size, reset_after=True)``;
  ``"rnn_tanh"``/``"rnn_relu"``: ``seqjax.cells.rnn(hidden_size, activation=...)``.

  Args:
    kind: one of ``KINDS`` (PyTorch's ``module.mode``, any case).
    hidden_size: H, > 0.
    dtype: dtype of the parameters and the carry.

  Returns:
    A ``seqjax.Cell``; its params are those of one direction of one layer of
    ``from_torch`` (``{"w_x", "w_h", "b"}``, plus ``"b_hn"`` for the GRU).
  """
  kind = _kind(kind)
  if kind == "lstm":
    return lstm(hidden_size, forget_bias=0.0, dtype=dtype)
  if kind == "gru":
    return gru(hidden_size, reset_after=True, dtype=dtype)
  return rnn(hidden_size, activation=kind[len("rnn_"):], dtype=dtype)


def _torch_entries(state_dict: Mapping[str, Any], prefix: str) -> dict[tuple, Any]:
  """``{(name, layer, suffix): array}`` of the recurrent keys under ``prefix``."""
  if not isinstance(state_dict, Mapping):
    raise TypeError(f"state_dict must be a mapping from PyTorch's key names to arrays, "
                    f"got {type(state_dict).__name__}")
  entries = {}
  for key, value in state_dict.items():
    if not isinstance(key, str) or not key.startswith(prefix):
      continue
    match = _TORCH_KEY.match(key[len(prefix):])
    if match is None:
      raise ValueError(f"state_dict has an unexpected key {key!r}; expected "
                       f"{prefix}weight_ih_l<k>, weight_hh_l<k>, bias_ih_l<k>, bias_hh_l<k> "
                       f"(with _reverse for the backward direction); pass prefix= to "
                       f"read the recurrent module out of a whole model's state dict")
    name, layer, suffix = match.group(1), int(match.group(2)), match.group(3) or ""
    if name == "weight_hr":
      raise ValueError(f"state_dict has {key!r}: nn.LSTM(proj_size > 0) has no seqjax "
                       f"equivalent")
    entries[(name, layer, suffix)] = value
  if not entries:
    raise ValueError(f"state_dict has no keys {prefix}weight_ih_l0, ... (keys: "
                     f"{sorted(map(str, state_dict))[:8]})")
  return entries


def _sizes_from_torch(entries, kind: str, prefix: str) -> tuple[int, int]:
  """(H, D) from layer 0, tolerating a transposed array (whose error comes later)."""
  gates = KINDS[kind]
  key = f"{prefix}weight_hh_l0"
  if ("weight_hh", 0, "") not in entries:
    raise ValueError(f"state_dict is missing {key!r}")
  shape = checks.shape_of(entries[("weight_hh", 0, "")])
  if len(shape) != 2 or not (shape[0] == gates * shape[1] or shape[1] == gates * shape[0]):
    raise ValueError(f"{key} has shape {shape}, expected ({gates}H, H) for "
                     f"kind={kind!r} (gates stacked along the first axis)")
  hidden = shape[1] if shape[0] == gates * shape[1] else shape[0]
  key = f"{prefix}weight_ih_l0"
  if ("weight_ih", 0, "") not in entries:
    raise ValueError(f"state_dict is missing {key!r} (expected shape ({gates * hidden}, D))")
  shape = checks.shape_of(entries[("weight_ih", 0, "")])
  if len(shape) != 2 or gates * hidden not in shape:
    raise ValueError(f"{key} has shape {shape}, expected ({gates * hidden}, D) = "
                     f"({gates}H, input_size) with H={hidden}")
  return hidden, shape[1] if shape[0] == gates * hidden else shape[0]


def from_torch(state_dict: Mapping[str, Any],
               kind: str,
               *,
               prefix: str = "",
               implementation: str = "auto") -> tuple[seqjax_layers.Layer, Params]:
  """Loads a PyTorch ``nn.LSTM``, ``nn.GRU`` or ``nn.RNN`` state dict.

  Any ``num_layers`` and ``bidirectional`` (both read from the keys), with or
  without biases (``bias=False`` leaves them out: they load as zeros). The
  returned layer mirrors the module (``xs`` batch-major ``(*B, T, D)`` as
  with ``batch_first=True``; pass ``time_major=True`` for torch's default
  layout):

  * one layer, one direction: ``recurrent(cell)``; params are the cell's
    (``seqjax.unroll(torch_cell(kind, H), params, xs)`` runs it too);
  * one layer, bidirectional: ``bidirectional(recurrent(cell))``; params
    ``{"forward": ..., "backward": ...}``, carry ``(carry_f, carry_b)``;
  * ``L > 1`` layers: ``stacked(<one layer>, num_layers=L)``; params
    ``{"layer_0": ..., ...}``, carry a tuple over layers.

  PyTorch's ``dropout`` between layers is not in the state dict: build
  ``stacked(..., dropout=p)`` around the same params if training needs it.
  Final carries relate to torch's as ``h_n[k * directions + d]`` = layer
  ``k``, direction ``d``'s ``h`` (``.h``/``.c`` of an ``LSTMCarry``). The
  conversion is written in ``jax.numpy``, so it can be differentiated:
  ``jax.grad`` of a loss of ``from_torch(state_dict)``'s outputs w.r.t. a
  state dict of jax arrays gives the gradients PyTorch computes for its own
  parameters.

  Args:
    state_dict: ``module.state_dict()`` or any mapping of PyTorch's key names
      (``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``, ``bias_hh_l0``,
      ``..._reverse``) to arrays (numpy, torch CPU tensors, jax, lists).
    kind: ``"lstm"``, ``"gru"``, ``"rnn_tanh"`` or ``"rnn_relu"``, any case
      (``module.mode``; an ``nn.RNN`` state dict does not say which
      nonlinearity it used).
    prefix: read only the keys that start with it (e.g. ``"encoder.rnn."``
      in a whole model's state dict), stripped before parsing.
    implementation: ``seqjax.Implementation`` of every direction (see
      ``seqjax.unroll``).

  Returns:
    ``(layer, params)``: a ``seqjax.layers.Layer`` and its params (jax arrays
    of the state dict's dtype).

  Raises:
    ValueError, one line naming the key: an unexpected or missing key, an
    array whose shape differs from the one its key must have (received and
    expected shapes given), ``proj_size > 0``. A transposed square weight
    (an RNN's ``weight_hh``) cannot be detected (see the module docstring).
  """
  kind = _kind(kind)
  Implementation.check(implementation)
  entries = _torch_entries(state_dict, prefix)
  hidden, input_size = _sizes_from_torch(entries, kind, prefix)
  gates = KINDS[kind]
  num_layers = 1 + max(layer for _, layer, _ in entries)
  suffixes = _SUFFIXES if any(suffix for _, _, suffix in entries) else ("",)
  has_bias = any(name.startswith("bias") for name, _, _ in entries)
  names = ("weight_ih", "weight_hh") + (("bias_ih", "bias_hh") if has_bias else ())

  def expected(name, layer):
    """(shape, layout in words) of key ``name`` of layer ``layer``."""
    if name == "weight_ih":
      if layer == 0:
        return (gates * hidden, input_size), f"({gates}H, D)"
      return (gates * hidden, hidden * len(suffixes)), f"({gates}H, H * directions)"
    if name == "weight_hh":
      return (gates * hidden, hidden), f"({gates}H, H)"
    return (gates * hidden,), f"({gates}H,)"

  arrays = {}
  for layer in range(num_layers):
    for suffix in suffixes:
      for name in names:
        key = f"{prefix}{name}_l{layer}{suffix}"
        shape, layout = expected(name, layer)
        if (name, layer, suffix) not in entries:
          raise ValueError(f"state_dict is missing {key!r} (expected shape {shape} = "
                           f"{layout}, H={hidden}) for a {num_layers}-layer "
                           f"{'bidirectional ' if len(suffixes) == 2 else ''}{kind}")
        value = entries[(name, layer, suffix)]
        _check_shape(key, value, shape, f"{layout} with H={hidden}")
        arrays[(name, layer, suffix)] = _array(value)
  dtype = arrays[("weight_hh", 0, "")].dtype
  checks.float_array(f"{prefix}weight_hh_l0", arrays[("weight_hh", 0, "")])

  def cell_params(layer, suffix):
    def get(name):
      return arrays[(name, layer, suffix)].astype(dtype)

    params = {"w_x": get("weight_ih").T, "w_h": get("weight_hh").T}
    if not has_bias:
      params["b"] = jnp.zeros((gates * hidden,), dtype)
      if kind == "gru":
        params["b_hn"] = jnp.zeros((hidden,), dtype)
    elif kind == "gru":
      b_ih, b_hh = get("bias_ih"), get("bias_hh")
      params["b"] = jnp.concatenate([b_ih[:2 * hidden] + b_hh[:2 * hidden],
                                     b_ih[2 * hidden:]])
      params["b_hn"] = b_hh[2 * hidden:]
    else:
      params["b"] = get("bias_ih") + get("bias_hh")
    return params

  direction = seqjax_layers.recurrent(torch_cell(kind, hidden, dtype=dtype),
                                      implementation=implementation)
  one_layer = direction
  if len(suffixes) == 2:
    one_layer = seqjax_layers.bidirectional(direction)

  def layer_params(layer):
    if len(suffixes) == 1:
      return cell_params(layer, "")
    return {"forward": cell_params(layer, ""), "backward": cell_params(layer, "_reverse")}

  if num_layers == 1:
    return one_layer, layer_params(0)
  return (seqjax_layers.stacked(one_layer, num_layers=num_layers),
          {f"layer_{layer}": layer_params(layer) for layer in range(num_layers)})


def _numpy(where: str, value: Any) -> np.ndarray:
  array = np.asarray(value)
  if not np.issubdtype(array.dtype, np.floating):
    raise TypeError(f"{where} must be a floating-point array, got dtype {array.dtype}")
  return array


def _cell_params_kind(where: str, params: Any, kind: Optional[str]) -> str:
  """Checks one cell's params are a plain PyTorch/Flax-style cell; returns its kind."""
  if not isinstance(params, Mapping) or "w_h" not in params:
    raise ValueError(f"{where} must be the params of an lstm, gru or rnn cell "
                     f"(a dict with w_x, w_h, b), got "
                     f"{sorted(params) if isinstance(params, Mapping) else type(params).__name__}")
  if "w_peep" in params:
    raise ValueError(f"{where} has w_peep: a peephole LSTM has no PyTorch or Flax "
                     f"equivalent")
  shape = checks.shape_of(params["w_h"])
  if kind is None:  # from the shapes: Flax has no RNN kind to confuse them with
    if len(shape) == 2 and shape[1] == 4 * shape[0]:
      kind = "lstm"
    elif len(shape) == 2 and shape[1] == 3 * shape[0]:
      kind = "gru"
    else:
      raise ValueError(f"{where}['w_h'] has shape {shape}, expected (H, 4H) (lstm) or "
                       f"(H, 3H) (gru)")
  elif len(shape) != 2 or shape[1] != KINDS[kind] * shape[0]:
    raise ValueError(f"{where}['w_h'] has shape {shape}, expected (H, {KINDS[kind]}H) for "
                     f"kind={kind!r}")
  if kind == "gru" and "b_hn" not in params:
    raise ValueError(f"{where} has no b_hn: only gru(reset_after=True) has a PyTorch "
                     f"or Flax equivalent")
  missing = [k for k in _CELL_KEYS[kind] if k not in params]
  extra = [k for k in params if k not in _CELL_KEYS[kind]]
  if missing or extra:
    raise ValueError(f"{where} must hold exactly {list(_CELL_KEYS[kind])} for kind={kind!r}; "
                     f"missing {missing}, unexpected {extra}")
  return kind


def _cell_arrays(where: str, params: Mapping, kind: str, hidden: Optional[int],
                 input_size: Optional[int]) -> dict[str, np.ndarray]:
  """The cell's arrays as numpy, shape-checked (H from ``w_h`` when ``hidden`` is None)."""
  gates = KINDS[kind]
  arrays = {k: _numpy(f"{where}['{k}']", params[k]) for k in _CELL_KEYS[kind]}
  if hidden is None:  # w_h's shape was checked by _cell_params_kind
    hidden = arrays["w_h"].shape[0]
  if input_size is None:
    if arrays["w_x"].ndim != 2:
      raise ValueError(f"{where}['w_x'] has shape {arrays['w_x'].shape}, expected "
                       f"(D, {gates * hidden}) = (D, {gates}H) with H={hidden}")
    input_size = arrays["w_x"].shape[0]
  for k, shape, layout in (("w_x", (input_size, gates * hidden), f"(D, {gates}H)"),
                           ("w_h", (hidden, gates * hidden), f"(H, {gates}H)"),
                           ("b", (gates * hidden,), f"({gates}H,)"),
                           ("b_hn", (hidden,), "(H,)")):
    if k in arrays:
      _check_shape(f"{where}['{k}']", arrays[k], shape, f"{layout} with H={hidden}")
  return arrays


def _forget_bias(kind: str, forget_bias: Optional[float], function: str) -> float:
  if kind != "lstm":
    if forget_bias is not None:
      raise ValueError(f"forget_bias applies to kind='lstm' only, got forget_bias="
                       f"{forget_bias} for kind={kind!r}")
    return 0.0
  if forget_bias is None:
    raise ValueError(f"{function} needs forget_bias= for an LSTM: the value its seqjax "
                     f"lstm was built with (seqjax.cells.lstm's default is 1.0; "
                     f"from_torch, from_flax and torch_cell build 0.0); it is folded "
                     f"into the forget gate's bias")
  return checks.finite("forget_bias", forget_bias)


def _layers_of(params: Any) -> list[Any]:
  """The per-layer params of a ``from_torch``-shaped pytree."""
  if isinstance(params, Mapping) and params and all(
      isinstance(k, str) and re.fullmatch(r"layer_\d+", k) for k in params):
    names = [f"layer_{i}" for i in range(len(params))]
    if sorted(params) != sorted(names):
      raise ValueError(f"params of a stack must be layer_0 ... layer_{len(params) - 1}, "
                       f"got {sorted(params)}")
    return [params[name] for name in names]
  return [params]


def _split_bias(total: np.ndarray, like_ih: Optional[np.ndarray],
                like_hh: Optional[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
  """(bias_ih, bias_hh) summing to ``total``; keeps ``like``'s split where it still sums."""
  if like_ih is None or like_hh is None:
    return total, np.zeros_like(total)
  like_ih, like_hh = like_ih.astype(total.dtype), like_hh.astype(total.dtype)
  unchanged = like_ih + like_hh == total
  return np.where(unchanged, like_ih, total - like_hh), like_hh


def to_torch(params: Params,
             kind: str,
             *,
             forget_bias: Optional[float] = None,
             bias: bool = True,
             like: Optional[Mapping[str, Any]] = None,
             prefix: str = "") -> dict[str, np.ndarray]:
  """Writes seqjax params as a PyTorch ``nn.LSTM``/``nn.GRU``/``nn.RNN`` state dict.

  The reverse of ``from_torch``: ``params`` is one cell's params, a
  ``{"forward", "backward"}`` pair, or a stack ``{"layer_0": ..., ...}`` of
  either (layer ``k > 0`` reads ``H * directions`` features), as
  ``from_torch`` returns them, or as ``stacked``/``bidirectional`` of
  ``torch_cell(kind, H)`` build them. Load the result with
  ``module.load_state_dict({k: torch.as_tensor(v) for k, v in sd.items()})``
  into ``nn.LSTM(D, H, num_layers=L, bidirectional=..., batch_first=...)``.

  PyTorch has two biases where seqjax has their sum: without ``like`` the
  whole bias goes to ``bias_ih`` and ``bias_hh`` is zero (the GRU keeps
  ``b_hn`` in ``bias_hh``'s n block), which computes the same function.
  With ``like`` (e.g. the state dict the params came from) ``bias_hh`` is
  taken from it and ``bias_ih = b - bias_hh``, except that entries where
  ``like``'s pair still sums to ``b`` exactly are copied from ``like``: an
  untouched ``from_torch -> to_torch`` round trip returns the original arrays
  bit for bit.

  Args:
    params: seqjax params as above (jax or numpy arrays).
    kind: ``"lstm"``, ``"gru"``, ``"rnn_tanh"`` or ``"rnn_relu"`` (any case).
    forget_bias: required for ``"lstm"``, forbidden otherwise: the
      ``forget_bias`` the seqjax lstm was built with (``seqjax.cells.lstm``
      defaults to 1.0; ``from_torch``/``from_flax``/``torch_cell`` use 0.0).
      It is added to the forget block of ``bias_ih``, since PyTorch has none.
    bias: emit the bias keys; ``False`` is for ``nn.LSTM(bias=False)`` and
      requires all biases (``forget_bias`` included) to be zero.
    like: optional state dict (PyTorch's key names under ``prefix``) whose
      ``bias_ih``/``bias_hh`` split to keep.
    prefix: prepended to every key.

  Returns:
    ``{prefix + "weight_ih_l0": (G*H, D), ...}``: numpy arrays of the params'
    dtype, PyTorch's shapes and key names.

  Raises:
    ValueError, one line: ``forget_bias`` missing for an LSTM (or given for
    another kind), params that are not a torch-shaped layout (a peephole
    LSTM, ``gru(reset_after=False)``, ``tied_lstm``, skip connections, a key
    or shape that does not fit, named with the shape received and expected),
    or ``bias=False`` with nonzero biases.
  """
  kind = _kind(kind)
  fold = _forget_bias(kind, forget_bias, "to_torch")
  gates = KINDS[kind]
  hidden, input_size, width = None, None, None
  state = {}
  for layer, layer_params in enumerate(_layers_of(params)):
    if isinstance(layer_params, Mapping) and set(layer_params) == {"forward", "backward"}:
      directions = [("", layer_params["forward"], "['forward']"),
                    ("_reverse", layer_params["backward"], "['backward']")]
    else:
      directions = [("", layer_params, "")]
    if layer > 0 and len(directions) != width:
      raise ValueError(f"every layer must have the same directions as layer 0 "
                       f"({width}), layer {layer} has {len(directions)}")
    width = len(directions)
    for suffix, cell_params, path in directions:
      where = f"params{path}" if params is layer_params else f"params['layer_{layer}']{path}"
      _cell_params_kind(where, cell_params, kind)
      arrays = _cell_arrays(where, cell_params, kind, hidden,
                            input_size if layer == 0 else hidden * width)
      hidden, input_size = arrays["w_h"].shape[0], arrays["w_x"].shape[0]
      total = arrays["b"].copy()
      if fold:
        total[hidden:2 * hidden] += np.asarray(fold, total.dtype)
      names = {n: f"{prefix}{n}_l{layer}{suffix}" for n in
               ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
      state[names["weight_ih"]] = np.ascontiguousarray(arrays["w_x"].T)
      state[names["weight_hh"]] = np.ascontiguousarray(arrays["w_h"].T)
      reference = {}
      for n in ("bias_ih", "bias_hh"):
        if like is not None and names[n] in like:
          reference[n] = np.asarray(like[names[n]])
          _check_shape(f"like[{names[n]!r}]", reference[n], (gates * hidden,),
                       f"({gates}H,)")
      like_ih, like_hh = reference.get("bias_ih"), reference.get("bias_hh")
      if kind == "gru":
        split = 2 * hidden
        ih_rz, hh_rz = _split_bias(total[:split],
                                   None if like_ih is None else like_ih[:split],
                                   None if like_hh is None else like_hh[:split])
        bias_ih = np.concatenate([ih_rz, total[split:]])
        bias_hh = np.concatenate([hh_rz, arrays["b_hn"]])
      else:
        bias_ih, bias_hh = _split_bias(total, like_ih, like_hh)
      if bias:
        state[names["bias_ih"]], state[names["bias_hh"]] = bias_ih, bias_hh
      elif np.any(bias_ih) or np.any(bias_hh):
        raise ValueError(f"bias=False but {where} has nonzero biases"
                         f"{' (forget_bias counts)' if fold else ''}")
  return state


def _flax_params(variables: Any) -> Mapping:
  """The per-gate dict of a Flax cell's variables (``{"params": ...}`` unwrapped)."""
  if isinstance(variables, Mapping) and set(variables) == {"params"}:
    variables = variables["params"]
  if not isinstance(variables, Mapping):
    raise TypeError(f"variables must be a Flax cell's variables dict, got "
                    f"{type(variables).__name__}")
  return variables


def from_flax(variables: Mapping[str, Any]) -> tuple[Cell, Params]:
  """Loads the params of a Flax ``nn.LSTMCell``, ``nn.OptimizedLSTMCell`` or ``nn.GRUCell``.

  Flax keeps one Dense per gate: the LSTM has input kernels ``ii, if, ig, io``
  (D, H) without bias and recurrent kernels ``hi, hf, hg, ho`` (H, H) with
  bias (the same names in both LSTM classes); the GRU has ``ir, iz, in``
  (D, H) with bias, ``hr, hz`` (H, H) without and ``hn`` (H, H) with a bias
  that, as in PyTorch, sits inside the reset product. Mapping::

    LSTM: w_x = [ii|if|ig|io].kernel   w_h = [hi|hf|hg|ho].kernel
          b = [hi|hf|hg|ho].bias        (lstm(H, forget_bias=0.0))
    GRU:  w_x = [ir|iz|in].kernel      w_h = [hr|hz|hn].kernel
          b = [ir|iz|in].bias, b_hn = hn.bias   (gru(H, reset_after=True))

  (``[a|b]`` concatenates along the last axis.) Flax's LSTM carry is
  ``(c, h)``, seqjax's ``LSTMCarry(h, c)``: convert a carry with
  ``LSTMCarry(h=carry[1], c=carry[0])``. Flax cells with another
  ``gate_fn``/``activation_fn`` than sigmoid/tanh have no seqjax equivalent.

  Args:
    variables: ``flax_cell.init(...)`` (``{"params": {...}}``) or its
      ``"params"`` dict; for a cell inside ``nn.RNN`` pass
      ``variables["params"]["cell"]``.

  Returns:
    ``(cell, params)``: ``seqjax.cells.lstm(H, forget_bias=0.0)`` or
    ``seqjax.cells.gru(H)`` of the kernels' dtype, and its params.

  Raises:
    ValueError, one line: gate names that are neither Flax's LSTM's nor its
    GRU's, a missing or extra kernel/bias, or a shape that does not fit
    (the key, the shape received and the shape expected).
  """
  gates = _flax_params(variables)
  names = set(gates)
  if names == set(_FLAX_LSTM):
    layout, order, kind = _FLAX_LSTM, ("i", "f", "g", "o"), "lstm"
  elif names == set(_FLAX_GRU):
    layout, order, kind = _FLAX_GRU, ("r", "z", "n"), "gru"
  else:
    raise ValueError(f"variables must hold a Flax LSTMCell's gates {sorted(_FLAX_LSTM)} "
                     f"or a GRUCell's {sorted(_FLAX_GRU)}, got {sorted(map(str, names))}")
  for gate, leaves in layout.items():
    entry = gates[gate]
    if not isinstance(entry, Mapping) or set(entry) != set(leaves):
      got = sorted(entry) if isinstance(entry, Mapping) else type(entry).__name__
      raise ValueError(f"variables['{gate}'] must hold exactly {list(leaves)}, got {got}")
  recurrent_shape = checks.shape_of(gates["h" + order[0]]["kernel"])
  input_shape = checks.shape_of(gates["i" + order[0]]["kernel"])
  if len(recurrent_shape) != 2 or len(input_shape) != 2:
    raise ValueError(f"variables['h{order[0]}']['kernel'] and ['i{order[0]}']['kernel'] "
                     f"must be (H, H) and (D, H), got {recurrent_shape} and {input_shape}")
  hidden, input_size = recurrent_shape[-1], input_shape[0]
  arrays = {}
  for gate, leaves in layout.items():
    for leaf in leaves:
      if leaf == "bias":
        expected, words = (hidden,), "(H,)"
      elif gate[0] == "i":
        expected, words = (input_size, hidden), "(D, H)"
      else:
        expected, words = (hidden, hidden), "(H, H)"
      _check_shape(f"variables['{gate}']['{leaf}']", gates[gate][leaf], expected,
                   f"{words} with H={hidden}")
      arrays[gate, leaf] = _array(gates[gate][leaf])
  dtype = arrays["h" + order[0], "kernel"].dtype

  def cat(items):
    return jnp.concatenate([arrays[item].astype(dtype) for item in items], axis=-1)

  params = {"w_x": cat([("i" + g, "kernel") for g in order]),
            "w_h": cat([("h" + g, "kernel") for g in order])}
  if kind == "lstm":
    params["b"] = cat([("h" + g, "bias") for g in order])
    return lstm(hidden, forget_bias=0.0, dtype=dtype), params
  params["b"] = cat([("i" + g, "bias") for g in order])
  params["b_hn"] = arrays["hn", "bias"].astype(dtype)
  return gru(hidden, reset_after=True, dtype=dtype), params


def to_flax(params: Params, *, forget_bias: Optional[float] = None) -> dict[str, Any]:
  """Writes an LSTM's or a GRU's params as a Flax cell's variables.

  The reverse of ``from_flax`` (see its mapping); the kind is read from the
  shapes (``w_h`` (H, 4H): LSTM, loads into ``nn.LSTMCell`` and
  ``nn.OptimizedLSTMCell``; (H, 3H) with ``b_hn``: GRU, ``nn.GRUCell``).
  The round trip ``from_flax -> to_flax`` returns the same arrays.

  Args:
    params: one cell's params: ``seqjax.cells.lstm`` (no peepholes) or
      ``seqjax.cells.gru(reset_after=True)``.
    forget_bias: required for an LSTM, forbidden for a GRU: the
      ``forget_bias`` its seqjax lstm was built with (1.0 by default, 0.0 from
      ``from_flax``); it is added to ``hf``'s bias, since Flax has none.

  Returns:
    ``{"params": {gate: {"kernel": ..., "bias": ...}}}``, numpy arrays of the
    params' dtype, ready for ``flax_cell.apply``.

  Raises:
    ValueError, one line, as ``to_torch``.
  """
  kind = _cell_params_kind("params", params, None)
  fold = _forget_bias(kind, forget_bias, "to_flax")
  arrays = _cell_arrays("params", params, kind, None, None)
  hidden = arrays["w_h"].shape[0]
  order = ("i", "f", "g", "o") if kind == "lstm" else ("r", "z", "n")
  block = lambda name, k: arrays[name][..., k * hidden:(k + 1) * hidden].copy()  # noqa: E731
  gates = {}
  for k, g in enumerate(order):
    gates["i" + g] = {"kernel": block("w_x", k)}
    gates["h" + g] = {"kernel": block("w_h", k)}
    if kind == "lstm":
      gates["h" + g]["bias"] = block("b", k)
      if g == "f" and fold:
        gates["hf"]["bias"] += np.asarray(fold, arrays["b"].dtype)
    else:
      gates["i" + g]["bias"] = block("b", k)
  if kind == "gru":
    gates["hn"]["bias"] = arrays["b_hn"].copy()
  return {"params": gates}
