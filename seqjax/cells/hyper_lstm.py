"""HyperLSTM: an LSTM whose weights a small LSTM rescales at every step.

A dynamic hypernetwork (Ha, Dai & Le 2016, section 3.2): a hyper-LSTM of
``hyper_size`` units reads the input and the main LSTM's previous state, and
its output emits, at each step, per-row scaling vectors for the main LSTM's
input and recurrent weight matrices and a bias. This is the paper's
memory-efficient form: a generated weight ``W(z)`` never exists as a matrix,
``W(z) x = d(z) * (W x)`` with a generated vector ``d(z)`` of one scale per
row (per hidden unit).

Gate order in every stacked weight, bias and embedding is PyTorch's, as in
``seqjax.cells.lstm``: input ``i``, forget ``f``, candidate ``g``, output
``o``. Block ``k`` of ``4H`` (or ``4Nz``, ``4Nh``) columns is
``[k*H:(k+1)*H]``; axis 0 of each (4, Nz, H) projection is the gate.

References:
  Ha, Dai & Le 2016, "HyperNetworks", https://arxiv.org/abs/1609.09106
  Ha's reference TensorFlow implementation ("supercell", ``HyperLSTMCell``),
  https://github.com/hardmaru/supercell
  Ba, Kiros & Hinton 2016, "Layer normalization" (the normalised LSTM),
  https://arxiv.org/abs/1607.06450
  Cooijmans et al. 2016, "Recurrent batch normalization" (the 0.1 scale the
  reference implementation starts its scaling vectors at),
  https://arxiv.org/abs/1603.09025
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from seqjax import checks
from seqjax import init as initializers
from seqjax.cells import common
from seqjax.types import Array, Cell

__all__ = ["hyper_lstm", "HyperLSTMCarry", "hyper_lstm_scales"]  # re-exported by seqjax.cells

_GATES = 4
# Added to the variance in every layer normalisation, as in the reference
# implementation (its ``layer_norm_all`` and ``layer_norm``).
_LAYER_NORM_EPSILON = 1e-3
# Standard deviation of the hyper output -> bias embedding weights (W_hb) at
# init, as in the reference implementation; the bias projection starts at zero.
_BIAS_EMBED_STDDEV = 0.01


class HyperLSTMCarry(NamedTuple):
  """Carry of ``hyper_lstm``: the main LSTM's state and the hyper-LSTM's."""

  h: Array  # shape=(*B, H): main hidden state, also the cell's output.
  c: Array  # shape=(*B, H): main memory cell.
  hyper_h: Array  # shape=(*B, Nh): hyper-LSTM hidden state.
  hyper_c: Array  # shape=(*B, Nh): hyper-LSTM memory cell.


def _layer_norm(a, scale, bias, groups: int):
  """Normalises each of ``groups`` equal blocks of ``a``'s last axis on its own."""
  shape = a.shape
  blocks = a.reshape(shape[:-1] + (groups, shape[-1] // groups))
  mean = jnp.mean(blocks, axis=-1, keepdims=True)
  centred = blocks - mean
  var = jnp.mean(centred * centred, axis=-1, keepdims=True)
  normed = centred * jax.lax.rsqrt(var + _LAYER_NORM_EPSILON)
  return normed.reshape(shape) * scale + bias


def _lstm_update(pre, c_prev, forget_bias: float, ln):
  """One LSTM update from the gate pre-activations ``pre`` (*B, 4n).

  ``ln`` is ``None`` or the layer-norm params ``{gates_scale, gates_bias,
  c_scale, c_bias}``. Written in the order of ``seqjax.cells.lstm``'s step, so
  that equal pre-activations give bitwise equal states.
  """
  if ln is not None:
    pre = _layer_norm(pre, ln["gates_scale"], ln["gates_bias"], _GATES)
  a_i, a_f, a_g, a_o = jnp.split(pre, _GATES, axis=-1)
  f = jax.nn.sigmoid(a_f + forget_bias)
  g = jnp.tanh(a_g)
  i = jax.nn.sigmoid(a_i)
  c = f * c_prev + i * g
  c_out = c if ln is None else _layer_norm(c, ln["c_scale"], ln["c_bias"], 1)
  h = jax.nn.sigmoid(a_o) * jnp.tanh(c_out)
  return h, c


def _project(z, w):
  """Per gate, ``z`` (*B, 4Nz) times that gate's (Nz, H) block of ``w`` (4, Nz, H).

  Returns (*B, 4H), gate k in columns ``[k*H:(k+1)*H]``.
  """
  gates, embed, hidden = w.shape
  z = z.reshape(z.shape[:-1] + (gates, embed))
  out = jnp.einsum("...gk,gkh->...gh", z, w)
  return out.reshape(out.shape[:-2] + (gates * hidden,))


def hyper_lstm_scales(params: dict, hyper_h: Array) -> tuple[Array, Array, Array]:
  """The weight-scaling vectors and bias a HyperLSTM's hyper-LSTM output generates.

  ``d_x^k = (hh W_hx^k + b_hx^k) W_xz^k``, ``d_h^k = (hh W_hh^k + b_hh^k)
  W_hz^k`` and ``b^k = hh W_hb^k W_bz^k + b_0^k`` for the gates k = i, f, g, o
  (see ``hyper_lstm``), the interpretable internals of the cell: how much each
  row of the main LSTM's weights is scaled at each step. With the hyper
  states of every step (``seqjax.scan.trace(cell, params, xs)[2].hyper_h``)
  this gives them over time without changing the cell's results.

  Args:
    params: a ``hyper_lstm`` cell's params.
    hyper_h: (*B, Nh) hyper-LSTM outputs (any leading axes, e.g. (*B, T, Nh)).

  Returns:
    ``(d_x, d_h, bias)``, each (*B, 4H), gate k in columns ``[k*H:(k+1)*H]``.
  """
  embed, project = params["embed"], params["project"]
  d_x = _project(hyper_h @ embed["w_x"] + embed["b_x"], project["x"])
  d_h = _project(hyper_h @ embed["w_h"] + embed["b_h"], project["h"])
  bias = _project(hyper_h @ embed["w_b"], project["b"]) + params["b"]
  return d_x, d_h, bias


def hyper_lstm(hidden_size: int,
               *,
               hyper_size: int = 128,
               embed_size: int = 4,
               layer_norm: bool = False,
               forget_bias: float = 1.0,
               scale_init: float = 1.0,
               kernel_init=initializers.glorot_uniform(),
               recurrent_init=initializers.blockwise(initializers.orthogonal(), 4),
               bias_init=initializers.zeros,
               dtype=jnp.float32) -> Cell:
  """HyperLSTM (Ha et al. 2016), the memory-efficient form of section 3.2.

  Equations (x_t: (*B, D); h_t, c_t: (*B, H); the hyper-LSTM's state
  hh_t, hc_t: (*B, Nh); embeddings z: (*B, Nz) per gate; ``*`` is elementwise;
  ``k`` runs over the gates i, f, g, o)::

    hyper-LSTM on [x_t; h_{t-1}] (D + H inputs), an LSTM as below with
    d = 1 and its own weights:
      hh_t, hc_t = LSTM_hyper([x_t; h_{t-1}], hh_{t-1}, hc_{t-1})

    embeddings of the hyper output, 4 per part (one per gate):
      z_x^k = hh_t W_hx^k + b_hx^k         (Nh -> Nz)
      z_h^k = hh_t W_hh^k + b_hh^k         (Nh -> Nz)
      z_b^k = hh_t W_hb^k                  (Nh -> Nz)

    weight-scaling vectors and bias, linear in the embeddings:
      d_x^k = z_x^k W_xz^k                 (Nz -> H)
      d_h^k = z_h^k W_hz^k                 (Nz -> H)
      b^k   = z_b^k W_bz^k + b_0^k         (Nz -> H)

    main LSTM, each generated weight applied as a row scaling,
    W^k(z) x = d^k(z) * (x W^k):
      a^k = d_x^k * (x_t W_x^k) + d_h^k * (h_{t-1} W_h^k) + b^k
      i_t = sigmoid(a^i)
      f_t = sigmoid(a^f + forget_bias)
      g_t = tanh(a^g)
      c_t = f_t * c_{t-1} + i_t * g_t
      o_t = sigmoid(a^o)
      h_t = o_t * tanh(c_t)
      y_t = h_t

  With ``layer_norm=True``, as in the paper's experiments and its reference
  implementation (Ba et al. 2016's normalised LSTM, in both the main and the
  hyper-LSTM): each gate's summed pre-activation ``a^k`` (H units) is
  normalised on its own, ``a^k <- LN_k(a^k)``, before ``forget_bias`` and the
  nonlinearities, and the memory cell is normalised before the output tanh,
  ``h_t = o_t * tanh(LN_c(c_t))``; the carry keeps the unnormalised ``c_t``.
  ``LN(v) = gamma * (v - mean(v)) / sqrt(var(v) + 1e-3) + beta`` with
  per-unit ``gamma`` (init 1) and ``beta`` (init 0).

  The hyper-LSTM reads its own previous state and ``[x_t; h_{t-1}]``, and the
  embeddings are taken from its *new* output ``hh_t``, as in the reference
  implementation, which steps the hyper-LSTM first and projects its output.

  Initialisation, the reference implementation's (its ``hyper_norm`` and
  ``hyper_bias``): ``W_hx = W_hh = 0`` with ``b_hx = b_hh = 1``, so every
  embedding starts at ones, and ``W_xz = W_hz = scale_init / Nz`` in every
  entry, so every ``d`` starts at ``scale_init`` (exactly 1 for the default
  ``scale_init=1`` when Nz is a power of two, else within rounding). Zero
  z -> d projections with a unit bias would also start ``d`` at one, but then
  no gradient reaches ``W_hx``, ``W_hh`` or the hyper-LSTM until the
  projections move; constant projections pass it on from the first step.
  ``W_hb`` is N(0, 0.01^2) and ``W_bz = 0``, so the bias starts at ``b_0``.
  A new cell therefore computes ``seqjax.cells.lstm`` on its main weights
  (with ``scale_init=1``; the hyper-LSTM gets gradient once the embedding
  weights leave zero) and learns to depart from it. The reference
  implementation, always layer-normalised, starts ``d`` at 0.1 (the gain
  Cooijmans et al. recommend for normalised LSTMs); ``scale_init=0.1``
  matches it. Without layer normalisation that would shrink every
  pre-activation tenfold, hence the default of 1.

  The main and hyper LSTM weights use ``kernel_init``, ``recurrent_init`` and
  ``bias_init`` as ``seqjax.cells.lstm`` does. The hyper-LSTM gets the same
  ``forget_bias``.

  Params (paper name in brackets)::

    w_x (D, 4H) [W_x], w_h (H, 4H) [W_h], b (4H,) [b_0]   the main LSTM,
                                                         as seqjax.cells.lstm
    hyper: {w_x (D + H, 4Nh) (rows: x_t, then h_{t-1}), w_h (Nh, 4Nh),
            b (4Nh,)}                                    the hyper-LSTM
    embed: {w_x (Nh, 4Nz) [W_hx], b_x (4Nz,) [b_hx],
            w_h (Nh, 4Nz) [W_hh], b_h (4Nz,) [b_hh],
            w_b (Nh, 4Nz) [W_hb]}
    project: {x (4, Nz, H) [W_xz], h (4, Nz, H) [W_hz], b (4, Nz, H) [W_bz]}
    with layer_norm=True also ln and hyper.ln: {gates_scale, gates_bias (4n,),
    c_scale, c_bias (n,)} with n = H for the main LSTM, Nh for the hyper.

  Carry: ``HyperLSTMCarry(h, c, hyper_h, hyper_c)``, (*B, H), (*B, H),
  (*B, Nh), (*B, Nh).

  Args:
    hidden_size: H, the main LSTM's units, > 0.
    hyper_size: Nh, the hyper-LSTM's units, > 0 (the paper uses 128 beside
      1000 main units for character-level language modelling).
    embed_size: Nz, the size of each of the 12 embeddings, > 0 (the paper
      uses 4 there).
    layer_norm: layer-normalise both LSTMs' gate pre-activations and memory
      cells (see above).
    forget_bias: constant added to both LSTMs' forget-gate pre-activations.
    scale_init: the value every scaling vector ``d`` starts at.
    kernel_init: initialiser of ``w_x`` and ``hyper.w_x``.
    recurrent_init: initialiser of ``w_h`` and ``hyper.w_h``; the default
      makes each gate's block orthogonal.
    bias_init: initialiser of ``b`` and ``hyper.b``.
    dtype: dtype of the parameters and the carry.

  Returns:
    A ``seqjax.Cell`` with ``output_size = hidden_size``.

  References:
    Ha, Dai & Le 2016, "HyperNetworks", https://arxiv.org/abs/1609.09106
    Ha's "supercell" ``HyperLSTMCell``: https://github.com/hardmaru/supercell
    Ba, Kiros & Hinton 2016, "Layer normalization",
    https://arxiv.org/abs/1607.06450
  """
  hidden_size = checks.positive_int("hidden_size", hidden_size)
  hyper_size = checks.positive_int("hyper_size", hyper_size)
  embed_size = checks.positive_int("embed_size", embed_size)
  layer_norm = checks.boolean("layer_norm", layer_norm)
  forget_bias = checks.finite("forget_bias", forget_bias)
  scale_init = checks.finite("scale_init", scale_init)

  def ln_params(size):
    return {"gates_scale": jnp.ones((_GATES * size,), dtype),
            "gates_bias": jnp.zeros((_GATES * size,), dtype),
            "c_scale": jnp.ones((size,), dtype),
            "c_bias": jnp.zeros((size,), dtype)}

  def init(key, input_size):
    input_size = common.check_input_size(input_size)
    keys = jax.random.split(key, 7)
    embeds = _GATES * embed_size
    params = {
        "w_x": kernel_init(keys[0], (input_size, _GATES * hidden_size), dtype),
        "w_h": recurrent_init(keys[1], (hidden_size, _GATES * hidden_size), dtype),
        "b": bias_init(keys[2], (_GATES * hidden_size,), dtype),
        "hyper": {
            "w_x": kernel_init(keys[3], (input_size + hidden_size, _GATES * hyper_size),
                               dtype),
            "w_h": recurrent_init(keys[4], (hyper_size, _GATES * hyper_size), dtype),
            "b": bias_init(keys[5], (_GATES * hyper_size,), dtype),
        },
        "embed": {
            "w_x": jnp.zeros((hyper_size, embeds), dtype),
            "b_x": jnp.ones((embeds,), dtype),
            "w_h": jnp.zeros((hyper_size, embeds), dtype),
            "b_h": jnp.ones((embeds,), dtype),
            "w_b": _BIAS_EMBED_STDDEV * jax.random.normal(keys[6], (hyper_size, embeds),
                                                          dtype),
        },
        "project": {
            "x": jnp.full((_GATES, embed_size, hidden_size), scale_init / embed_size, dtype),
            "h": jnp.full((_GATES, embed_size, hidden_size), scale_init / embed_size, dtype),
            "b": jnp.zeros((_GATES, embed_size, hidden_size), dtype),
        },
    }
    if layer_norm:
      params["ln"] = ln_params(hidden_size)
      params["hyper"]["ln"] = ln_params(hyper_size)
    return params

  def initial_carry(params, batch_shape=()):
    main = common.zeros_carry(params, batch_shape, hidden_size, like="w_h")
    hyper = jnp.zeros(main.shape[:-1] + (hyper_size,), main.dtype)
    return HyperLSTMCarry(h=main, c=main, hyper_h=hyper, hyper_c=hyper)

  @common.checked_step(common.input_size_of("w_x"))
  def step(params, carry, x):
    h_prev, c_prev, hyper_h_prev, hyper_c_prev = carry
    hyper = params["hyper"]
    hyper_in = jnp.concatenate([x, h_prev], axis=-1)
    hyper_pre = hyper_in @ hyper["w_x"] + hyper_h_prev @ hyper["w_h"] + hyper["b"]
    hyper_h, hyper_c = _lstm_update(hyper_pre, hyper_c_prev, forget_bias, hyper.get("ln"))

    d_x, d_h, bias = hyper_lstm_scales(params, hyper_h)

    pre = d_x * (x @ params["w_x"]) + d_h * (h_prev @ params["w_h"]) + bias
    h, c = _lstm_update(pre, c_prev, forget_bias, params.get("ln"))
    return HyperLSTMCarry(h=h, c=c, hyper_h=hyper_h, hyper_c=hyper_c), h

  return Cell(init, initial_carry, step, common.input_size_of("w_x"), hidden_size,
              hidden_size,
              f"hyper_lstm(hidden_size={hidden_size}, hyper_size={hyper_size}, "
              f"embed_size={embed_size}, layer_norm={layer_norm}, "
              f"forget_bias={forget_bias}, scale_init={scale_init})")
