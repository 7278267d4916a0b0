"""Temporal convolutional networks: dilated causal 1-D convolutions as a seqjax ``Layer``.

The generic TCN of Bai, Kolter & Koltun (2018), "An Empirical Evaluation of
Generic Convolutional and Recurrent Networks for Sequence Modeling"
(https://arxiv.org/abs/1803.01271; reference implementation
https://github.com/locuslab/TCN). Level ``i`` is a residual block of two
causal convolutions with dilation ``d = 2**i``::

  z   = dropout(relu(conv_d(x)))            conv_d: kernel k, dilation d, causal
  z   = dropout(relu(conv_d(z)))
  y   = relu(z + x)                         (x W_s + b_s instead of x when the
                                              channel counts differ: a 1x1 conv)
  conv_d(x)_t = b + sum_{j=0}^{k-1} x_{t - (k-1-j) d} W_j
  W_j = g * V_j / ||V||                     (weight normalisation, per output channel)

Output ``t`` depends on inputs ``t, t-1, ..., t-R+1`` only, with the receptive
field ``R = receptive_field(kernel_size, levels)``.

The carry makes a TCN a drop-in ``seqjax.layers.Layer``: it holds, for every
convolution, its last ``(k-1) d`` inputs (zeros at the start, which is the
zero padding of a causal convolution). Feeding a sequence in chunks, or one
step at a time for generation, with the returned carry gives exactly the
outputs of one pass over the whole sequence; ``mask`` and ``reset`` mean what
they mean for ``seqjax.unroll``.

Shapes: B batch (any leading axes), T time, D input features, C channels.
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from seqjax import checks
from seqjax.layers import Layer, dropout_mask
from seqjax.types import Array, Params


class ConvHistory(NamedTuple):
  """Carry of one residual block: the inputs its two convolutions still need."""

  conv1: Array  # shape=(*B, (k-1) d, C_in): the block's last inputs.
  conv2: Array  # shape=(*B, (k-1) d, C): the last outputs of its first convolution.


def receptive_field(kernel_size: int, levels: int) -> int:
  """Steps of input that one output of a ``levels``-block TCN sees: ``1 + 2 (k-1) (2^L - 1)``.

  Each block has two convolutions of dilation ``2**i``, each reaching
  ``(k-1) 2**i`` steps further back.

  Args:
    kernel_size: k, the convolutions' kernel size, > 0.
    levels: L, the number of residual blocks, > 0.
  """
  kernel_size = checks.positive_int("kernel_size", kernel_size)
  levels = checks.positive_int("levels", levels)
  return 1 + 2 * (kernel_size - 1) * (2**levels - 1)


def _weight_norm(conv: Params) -> Array:
  """``g * V / ||V||`` with the norm over taps and input channels of each output channel."""
  v = conv["v"]
  norm = jnp.sqrt(jnp.sum(v * v, axis=(0, 1), keepdims=True))
  return conv["g"] * v / norm


def _causal_conv(history: Array, xs: Array, w: Array, b: Array, dilation: int,
                 keep: Optional[Array]) -> tuple[Array, Array]:
  """One causal dilated convolution over ``[history, xs]``.

  Args:
    history: ``(N, P, C_in)`` with ``P = (k-1) dilation``, the inputs before ``xs``.
    xs: ``(N, T, C_in)``.
    w: ``(k, C_in, C_out)``; tap ``j`` looks ``(k-1-j) dilation`` steps back.
    b: ``(C_out,)``.
    dilation: d.
    keep: ``None``, or ``(k, N, T)`` booleans: whether tap ``j`` of output
      ``t`` is in the same segment as ``t`` (a reset in between hides it).

  Returns:
    ``(ys (N, T, C_out), extended (N, P + T, C_in))``.
  """
  kernel_size = w.shape[0]
  length = xs.shape[1]
  extended = jnp.concatenate([history, xs], axis=1)
  if keep is None:
    ys = jax.lax.conv_general_dilated(
        extended, w, window_strides=(1,), padding="VALID", rhs_dilation=(dilation,),
        dimension_numbers=("NWC", "WIO", "NWC"))
  else:
    # Taps across a reset are dropped, as the zero padding of a fresh sequence
    # would drop them. Slower than the convolution, so used only with resets.
    ys = sum(
        (extended[:, j * dilation:j * dilation + length]
         * keep[j][..., None].astype(xs.dtype)) @ w[j]
        for j in range(kernel_size))
  return ys + b, extended


def _same_segment(segments: Array, kernel_size: int, dilation: int) -> Array:
  """``(k, N, T)``: tap ``j`` of output ``t`` lies in ``t``'s segment.

  ``segments`` is ``(N, P + T)``: segment ids of the history and the chunk.
  """
  span = (kernel_size - 1) * dilation
  length = segments.shape[1] - span
  current = segments[:, span:]
  return jnp.stack([segments[:, j * dilation:j * dilation + length] == current
                    for j in range(kernel_size)])


def tcn(channels: Sequence[int],
        *,
        kernel_size: int = 2,
        dropout: float = 0.0,
        weight_norm: bool = True,
        skip_init_scale: float = 0.01) -> Layer:
  """A temporal convolutional network with ``len(channels)`` residual levels.

  Args:
    channels: output channels of each level, e.g. ``[25] * 8``; level ``i``
      has dilation ``2**i``.
    kernel_size: k, taps of every convolution (the paper uses 2-8).
    dropout: rate of the dropout after each convolution's ReLU (training only;
      needs ``key``), in [0, 1).
    weight_norm: reparametrise each convolution's weights as ``g V / ||V||``
      (Salimans & Kingma 2016), as the reference implementation does.
    skip_init_scale: standard deviation of the normal initial 1x1 skip
      weights ``W_s`` (the reference implementation's 0.01). Convolutions start
      from PyTorch's default ``U(+-1/sqrt(D k))``, as the reference's do.

  Returns:
    A ``seqjax.layers.Layer``: ``apply(params, xs (*B, T, D), carry=None, *,
    mask=None, reset=None, key=None, training=False, time_major=False) ->
    (carry, ys (*B, T, C_last))``; the carry is a list of ``ConvHistory``, one
    per level. Params: ``{"levels": [{"conv1": {"v": (k, D, C), "g": (C,),
    "b": (C,)}, "conv2": ..., "skip": {"w": (D, C), "b": (C,)} (only when
    D != C)}, ...]}`` (``"w"`` instead of ``"v"``/``"g"`` without weight norm).

  Example::

    layer = seqjax.tcn.tcn([25] * 8, kernel_size=7)
    params = layer.init(key, 1)
    _, ys = layer.apply(params, pixels)                      # (B, 784, 25)
    carry = layer.initial_carry(params, (B,))                # streaming:
    carry, y_t = layer.apply(params, x_t[:, None], carry)    # one step at a time
  """
  channels = tuple(checks.positive_int("channels[i]", c) for c in channels)
  if not channels:
    raise ValueError("channels must name at least one level, got []")
  kernel_size = checks.positive_int("kernel_size", kernel_size)
  rate = float(checks.in_range("dropout", dropout, 0.0, 1.0))
  if rate == 1.0:
    raise ValueError("dropout must be in [0, 1), got 1.0")
  skip_init_scale = checks.positive("skip_init_scale", skip_init_scale)
  dilations = tuple(2**i for i in range(len(channels)))
  spans = tuple((kernel_size - 1) * d for d in dilations)

  def init_conv(key, fan_in, fan_out):
    # PyTorch's default Conv1d init, U(+-1/sqrt(fan_in k)) for weights and
    # bias, is what the reference implementation really trains from: its
    # N(0, 0.01) re-initialisation of weight-normed convolutions is overwritten
    # by weight_norm's hook at the first forward pass (locuslab/TCN issue #1).
    k_v, k_b = jax.random.split(key)
    bound = 1.0 / np.sqrt(fan_in * kernel_size)
    v = jax.random.uniform(k_v, (kernel_size, fan_in, fan_out), minval=-bound, maxval=bound)
    b = jax.random.uniform(k_b, (fan_out,), minval=-bound, maxval=bound)
    if not weight_norm:
      return {"w": v, "b": b}
    # g = ||V|| makes the initial weights exactly V, as torch's weight_norm does.
    return {"v": v, "g": jnp.sqrt(jnp.sum(v * v, axis=(0, 1))), "b": b}

  def init(key, input_size):
    input_size = checks.positive_int("input_size", input_size)
    levels = []
    fan_in = input_size
    for key_level, width in zip(jax.random.split(key, len(channels)), channels):
      k1, k2, k3, k4 = jax.random.split(key_level, 4)
      level = {"conv1": init_conv(k1, fan_in, width), "conv2": init_conv(k2, width, width)}
      if fan_in != width:
        bound = 1.0 / np.sqrt(fan_in)
        level["skip"] = {
            "w": skip_init_scale * jax.random.normal(k3, (fan_in, width)),
            "b": jax.random.uniform(k4, (width,), minval=-bound, maxval=bound)}
      levels.append(level)
      fan_in = width
    return {"levels": levels}

  def input_size_of(params):
    conv = params["levels"][0]["conv1"]
    return (conv["v"] if weight_norm else conv["w"]).shape[1]

  def initial_carry(params, batch_shape=()):
    batch_shape = tuple(batch_shape)
    dtype = params["levels"][0]["conv1"]["b"].dtype
    carry = []
    fan_in = input_size_of(params)
    for width, span in zip(channels, spans):
      carry.append(ConvHistory(jnp.zeros((*batch_shape, span, fan_in), dtype),
                               jnp.zeros((*batch_shape, span, width), dtype)))
      fan_in = width
    return carry

  def run(params, xs, carry, segments, keys, training):
    """The levels on flat ``(N, T, D)`` inputs; returns ``(new carry, ys, ends)``."""
    new_carry = []
    for i, (level, history, dilation) in enumerate(zip(params["levels"], carry, dilations)):
      keep = None
      if segments is not None:
        keep = _same_segment(segments[:, -(spans[i] + xs.shape[1]):], kernel_size, dilation)
      convs = [level[name] for name in ("conv1", "conv2")]
      weights = [_weight_norm(c) if weight_norm else c["w"] for c in convs]
      z, ext1 = _causal_conv(history.conv1, xs, weights[0], convs[0]["b"], dilation, keep)
      z = jax.nn.relu(z)
      if training and rate > 0:
        z = z * dropout_mask(keys[2 * i], rate, z.shape, z.dtype)
      z, ext2 = _causal_conv(history.conv2, z, weights[1], convs[1]["b"], dilation, keep)
      z = jax.nn.relu(z)
      if training and rate > 0:
        z = z * dropout_mask(keys[2 * i + 1], rate, z.shape, z.dtype)
      skip = xs @ level["skip"]["w"] + level["skip"]["b"] if "skip" in level else xs
      new_carry.append((ext1, ext2))
      xs = jax.nn.relu(z + skip)
    return new_carry, xs

  def apply(params, xs, carry=None, *, mask=None, reset=None, key=None,
            training=False, time_major=False, recurrent_dropout=None):
    del recurrent_dropout  # a TCN has no recurrence to drop.
    xs = jnp.asarray(xs)
    checks.float_array("xs", xs)
    if xs.ndim < 2:
      raise ValueError(f"xs must be (*B, T, D), got shape {xs.shape}")
    if time_major:
      xs = jnp.moveaxis(xs, 0, -2)
    expected = input_size_of(params)
    if xs.shape[-1] != expected:
      raise ValueError(f"xs must have {expected} features (the params' input size) in its "
                       f"last axis, got shape {xs.shape}")
    batch_shape, length = xs.shape[:-2], xs.shape[-2]
    for name, value in (("mask", mask), ("reset", reset)):
      if value is not None and tuple(jnp.shape(value)) != (
          (length, *batch_shape) if time_major else (*batch_shape, length)):
        raise ValueError(f"{name} must have shape (*B, T) = {(*batch_shape, length)} "
                         f"({'time-major ' if time_major else ''}like xs), "
                         f"got {jnp.shape(value)}")
    if training and rate > 0 and key is None:
      raise ValueError(f"key is required when training with dropout={rate}")
    if carry is None:
      carry = initial_carry(params, batch_shape)
    if mask is not None:
      # Padded inputs never reach the convolutions: a NaN there would make the
      # weight gradients NaN (0 * NaN) even though its outputs are masked.
      batch_mask = jnp.asarray(mask, bool)
      if time_major:
        batch_mask = jnp.moveaxis(batch_mask, 0, -1)
      xs = jnp.where(batch_mask[..., None], xs, jnp.zeros((), xs.dtype))
    size = int(np.prod(batch_shape, dtype=int))
    flat = lambda a: jnp.reshape(a, (size, *a.shape[len(batch_shape):]))
    xs_flat = flat(xs)
    carry_flat = [ConvHistory(flat(h.conv1), flat(h.conv2)) for h in carry]

    def time_last(value):
      value = jnp.asarray(value, bool)
      return jnp.moveaxis(value, 0, -1) if time_major else value

    order = None
    if mask is not None:
      # Masked steps are skipped: each row's valid steps are moved to the front
      # (stable), run as one sequence, and put back; the carry is taken after
      # the last valid step.
      mask_flat = jnp.reshape(time_last(mask), (size, length))
      order = jnp.argsort(~mask_flat, axis=1, stable=True)
      xs_flat = jnp.take_along_axis(xs_flat, order[..., None], axis=1)
      valid = jnp.sum(mask_flat, axis=1)
    segments = None
    if reset is not None:
      # Segment ids count the resets so far; a reset on a masked step takes
      # effect at the next valid step, as in ``seqjax.unroll``.
      ids = jnp.cumsum(jnp.reshape(time_last(reset), (size, length)).astype(jnp.int32), axis=1)
      total_resets = ids[:, -1]
      if order is not None:
        ids = jnp.take_along_axis(ids, order, axis=1)
      segments = jnp.concatenate([jnp.zeros((size, max(spans)), jnp.int32), ids], axis=1)
    keys = (list(jax.random.split(key, 2 * len(channels)))
            if training and rate > 0 else None)
    extended, ys = run(params, xs_flat, carry_flat, segments, keys, training)

    def last_inputs(ext, span):
      if order is None:
        return ext[:, ext.shape[1] - span:]
      index = valid[:, None] + jnp.arange(span)[None, :]
      return jnp.take_along_axis(ext, index[..., None], axis=1)

    new_carry = [ConvHistory(last_inputs(e1, span), last_inputs(e2, span))
                 for (e1, e2), span in zip(extended, spans)]
    if segments is not None:
      # A reset after the last valid step leaves a fresh (zero) history.
      if order is None:
        last_id = segments[:, -1]
      else:
        chunk_ids = segments[:, max(spans):]
        at_last = jnp.take_along_axis(chunk_ids, jnp.maximum(valid - 1, 0)[:, None], axis=1)
        last_id = jnp.where(valid > 0, at_last[:, 0], 0)
      fresh = (total_resets != last_id)[:, None, None]
      new_carry = [ConvHistory(jnp.where(fresh, 0, h.conv1), jnp.where(fresh, 0, h.conv2))
                   for h in new_carry]
    if order is not None:
      ys = jnp.take_along_axis(ys, jnp.argsort(order, axis=1)[..., None], axis=1)
      ys = jnp.where(mask_flat[..., None], ys, 0)
    unflat = lambda a: jnp.reshape(a, (*batch_shape, *a.shape[1:]))
    ys = unflat(ys)
    new_carry = [ConvHistory(unflat(h.conv1), unflat(h.conv2)) for h in new_carry]
    if time_major:
      ys = jnp.moveaxis(ys, -2, 0)
    return new_carry, ys

  name = (f"tcn(channels={list(channels)}, kernel_size={kernel_size}, "
          f"receptive_field={receptive_field(kernel_size, len(channels))}"
          + (f", dropout={rate}" if rate else "") + ")")
  return Layer(init, initial_carry, apply, channels[-1], name)
