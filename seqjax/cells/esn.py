"""Echo-state network: a fixed random reservoir (the readouts live in ``seqjax.reservoir``).

The reservoir weights live under ``params["frozen"]`` so that training
(``seqjax.trainable_mask``) leaves them alone; the classic way to train an ESN
is instead to run the reservoir once and solve for a linear readout in closed
form with ``seqjax.reservoir.fit_readout``::

  cell = esn(200, spectral_radius=0.9)
  params = cell.init(key, input_size)
  _, states = seqjax.unroll(cell, params, inputs)          # (*B, T, H)
  readout_params = seqjax.reservoir.fit_readout(inputs, states, targets, washout=100)
  predictions = seqjax.reservoir.readout(readout_params, inputs, states)  # (*B, T, O)

References:
  Jaeger 2001, "The 'echo state' approach to analysing and training recurrent
  neural networks", GMD Report 148.
  Jaeger, Lukosevicius, Popovici & Siewert 2007, "Optimization and
  applications of echo state networks with leaky-integrator neurons",
  Neural Networks 20(3).
  Lukosevicius 2012, "A practical guide to applying echo state networks",
  Neural Networks: Tricks of the Trade.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from seqjax import checks
from seqjax import init as initializers
from seqjax.cells import common
from seqjax.scan import scan_steps
from seqjax.types import FROZEN, Array, Cell, FastPath

__all__ = ["esn"]  # re-exported by seqjax.cells


def _non_negative(name: str, value: Any) -> float:
  value = checks.finite(name, value)
  if value < 0:
    raise ValueError(f"{name} must be finite and >= 0, got {value}")
  return value


def _positive(name: str, value: Any) -> float:
  return checks.positive(name, checks.finite(name, value))


def connections_per_unit(hidden_size: int, connectivity: float) -> int:
  """K, the number of nonzero recurrent weights each reservoir unit receives.

  ``max(1, round(connectivity * hidden_size))``: ``esn`` draws exactly K
  inputs per unit, so ``w_rec`` has exactly ``K * H`` nonzeros (a fraction
  ``connectivity`` of its entries when ``connectivity * H`` is an integer).
  """
  return max(1, round(connectivity * hidden_size))


@functools.partial(jax.jit, static_argnames=("hidden_size", "fan_in", "dtype"))
def _sparse_reservoir(key, hidden_size: int, fan_in: int, dtype) -> Array:
  """(H, H) with exactly ``fan_in`` N(0, 1) entries in every column, zeros elsewhere.

  Column j holds the weights into unit j (``h @ w_rec``); its nonzero rows
  are a uniformly random ``fan_in``-subset of the H units, drawn for every
  column independently.
  """
  k_pattern, k_values = jax.random.split(key)
  # The fan_in smallest of H i.i.d. uniforms per unit are a uniform subset.
  scores = jax.random.uniform(k_pattern, (hidden_size, hidden_size))
  _, sources = jax.lax.top_k(-scores, fan_in)                    # (units, fan_in)
  values = jax.random.normal(k_values, (hidden_size, fan_in), dtype)
  units = jnp.arange(hidden_size)[:, None]
  w_rec_t = jnp.zeros((hidden_size, hidden_size), dtype).at[units, sources].set(values)
  return w_rec_t.T


# Up to this size every eigenvalue is computed (LAPACK, O(H^3), ~30 ms at
# 256); above it ARPACK finds the largest ones from sparse products, O(nnz)
# each: 0.1-0.3 s at H = 300-600 and ~0.8 s a run at H = 2000 on 2 busy
# cores, where all eigenvalues take 6-20 s.
_DENSE_MAX_SIZE = 256
# (eigenvalues wanted, Krylov basis size) of the two ARPACK runs. With one
# eigenvalue and the default basis of 20, ARPACK stopped at an eigenvalue
# that is not the largest for 4% (H = 300) to 46% (H = 1000) of random
# reservoirs and for 3 of 3 at H = 2000 (radius errors up to 2%): the
# eigenvalues of largest modulus crowd the edge of a disc. Four eigenvalues
# from a basis of 40 or 48 were right in all 154 runs (77 reservoirs, H =
# 300-1000, two start vectors each).
_ARPACK_RUNS = ((4, 40), (4, 48))


def _arpack_start(size: int, seed: int) -> np.ndarray:
  # A fixed start vector: without one ARPACK starts from a random vector and
  # the same matrix can give different radii on different calls.
  return np.random.default_rng(seed).standard_normal(size)


def _largest_modulus(w: np.ndarray) -> float:
  """max |eig(w)| in float64, the same bits on every call for the same matrix.

  Small matrices: all eigenvalues. Larger ones: two ARPACK runs from
  different fixed start vectors and basis sizes must agree to 1e-9,
  otherwise (or when one fails to converge) all eigenvalues are computed.
  """
  import scipy.sparse
  import scipy.sparse.linalg

  size = w.shape[0]
  if size > _DENSE_MAX_SIZE:
    matrix = scipy.sparse.csr_array(w)
    radii = []
    for seed, (count, basis) in enumerate(_ARPACK_RUNS):
      try:
        values = scipy.sparse.linalg.eigs(matrix, k=count, ncv=basis, which="LM", tol=1e-12,
                                          v0=_arpack_start(size, seed), maxiter=100 * size,
                                          return_eigenvectors=False)
      except scipy.sparse.linalg.ArpackError:
        break
      radii.append(float(np.max(np.abs(values))))
    if len(radii) == len(_ARPACK_RUNS) and max(radii) - min(radii) <= 1e-9 * max(radii):
      return max(radii)
  return float(np.max(np.abs(np.linalg.eigvals(w))))


def _exact_scale(w: np.ndarray, *, radius: float) -> np.ndarray:
  """``radius / max |eig(w)|`` as two float32 numbers whose sum is the float64 value.

  float32 because JAX converts a callback's results under the x64 setting of
  the thread that runs the callback, which need not be the caller's (inside
  ``with jax.enable_x64(True)`` a float64 result is refused); the pair keeps
  float64 accuracy for float64 reservoirs.
  """
  scale = radius / _largest_modulus(np.asarray(w, np.float64))
  high = np.float32(scale)
  return np.asarray([high, np.float32(scale - np.float64(high))], np.float32)


def _scale_to_radius(w_rec: Array, radius: float, method: str) -> Array:
  if method == "power":
    return initializers.scale_to_spectral_radius(w_rec, radius, method="power")
  # The target stays a Python float in the callback: exact, even without x64.
  high, low = jax.pure_callback(functools.partial(_exact_scale, radius=radius),
                                jax.ShapeDtypeStruct((2,), jnp.float32), w_rec)
  return w_rec * (high.astype(w_rec.dtype) + low.astype(w_rec.dtype))


def esn(hidden_size: int,
        *,
        spectral_radius: float = 0.9,
        connectivity: float = 0.1,
        input_scaling: float = 1.0,
        bias_scaling: float = 0.0,
        leak_rate: float = 1.0,
        spectral_method: str = "exact",
        dtype=jnp.float32) -> Cell:
  """Echo-state reservoir with leaky-integrator units.

  Equations (x_t: (*B, D), h_t: (*B, H), a = ``leak_rate``)::

    h_t = (1 - a) h_{t-1} + a tanh(x_t W_in + h_{t-1} W_rec + b)
    y_t = h_t

  Params, all fixed (under ``seqjax.FROZEN``, so ``seqjax.trainable_mask``
  marks them untrainable)::

    {"frozen": {"w_in": (D, H), "w_rec": (H, H), "b": (H,)}}

  ``w_rec`` is sparse: every unit receives exactly
  ``K = connections_per_unit(H, connectivity) = max(1, round(connectivity *
  H))`` connections (column j of ``w_rec`` has K nonzeros, from a uniformly
  random subset of the units), with N(0, 1) values, then rescaled to the
  requested spectral radius. So ``w_rec`` has exactly ``K H`` nonzeros, the
  count reservoirpy's ``rc_connectivity`` gives; and since every unit has
  an input, the connection graph has a cycle and the radius is never 0.
  ``w_in`` is U(-input_scaling, input_scaling) and ``b`` is
  U(-bias_scaling, bias_scaling). Carry: ``h`` (*B, H).

  ``init`` is deterministic: the same key gives the same parameters, bit for
  bit, on every call and in every process (on one machine and backend).
  With ``spectral_method="exact"`` the radius of ``w_rec`` is the requested
  one to float rounding (~1e-7 relative in float32).

  A spectral radius below 1 usually (not provably) gives the echo-state
  property: the state forgets its initial value and becomes a function
  of the input history alone. Train a linear readout with
  ``seqjax.reservoir.fit_readout``.

  Args:
    hidden_size: H, > 0.
    spectral_radius: target largest |eigenvalue| of ``w_rec``, finite, > 0.
    connectivity: fraction in (0, 1] of the units each unit receives input
      from (see above).
    input_scaling: half-width of the uniform ``w_in`` entries, finite, >= 0.
    bias_scaling: half-width of the uniform ``b`` entries, finite, >= 0
      (0: no bias).
    leak_rate: a in (0, 1]; 1 is the original ESN, smaller values slow the
      reservoir down (each unit has timescale 1/a steps).
    spectral_method: how ``init`` measures the radius it divides by:
      ``"exact"`` on the host in float64 (all eigenvalues for H <= 256;
      above, the largest ones by ARPACK from fixed start vectors, checked by
      a second run and replaced by all eigenvalues if the runs disagree), or
      ``"power"`` (power iteration on device, a few percent off; see
      ``seqjax.init.spectral_radius``).
    dtype: floating dtype of the parameters and the carry.

  Returns:
    A ``seqjax.Cell`` with ``output_size = hidden_size``.

  Raises:
    ValueError/TypeError: naming the argument, for a non-finite or
      non-positive spectral_radius, connectivity or leak_rate outside
      (0, 1], negative or non-finite scalings, an unknown spectral_method, a
      non-float dtype.
  """
  hidden_size = checks.positive_int("hidden_size", hidden_size)
  spectral_radius = _positive("spectral_radius", spectral_radius)
  connectivity = checks.in_range("connectivity", connectivity, 0.0, 1.0, low_open=True)
  input_scaling = _non_negative("input_scaling", input_scaling)
  bias_scaling = _non_negative("bias_scaling", bias_scaling)
  leak_rate = checks.in_range("leak_rate", leak_rate, 0.0, 1.0, low_open=True)
  checks.one_of("spectral_method", spectral_method, ("exact", "power"))
  try:
    dtype = jnp.dtype(dtype)
  except TypeError:
    raise TypeError(f"dtype must be a floating dtype such as jnp.float32, got {dtype!r}") from None
  if not jnp.issubdtype(dtype, jnp.floating):
    raise TypeError(f"dtype must be a floating dtype such as jnp.float32, got {dtype.name}")
  fan_in = connections_per_unit(hidden_size, connectivity)

  def init(key, input_size):
    input_size = common.check_input_size(input_size)
    k_in, k_rec, k_b = jax.random.split(key, 3)
    w_rec = _sparse_reservoir(k_rec, hidden_size, fan_in, dtype)
    return {FROZEN: {
        "w_in": jax.random.uniform(k_in, (input_size, hidden_size), dtype,
                                   -input_scaling, input_scaling),
        "w_rec": _scale_to_radius(w_rec, spectral_radius, spectral_method),
        "b": jax.random.uniform(k_b, (hidden_size,), dtype, -bias_scaling, bias_scaling),
    }}

  def initial_carry(params, batch_shape=()):
    return jnp.zeros(checks.batch_shape(batch_shape) + (hidden_size,), params[FROZEN]["w_rec"].dtype)

  def update(h, pre):
    drive = jnp.tanh(pre)
    h = drive if leak_rate == 1.0 else (1.0 - leak_rate) * h + leak_rate * drive
    return h, h

  def step(params, h, x):
    frozen = params[FROZEN]
    return update(h, x @ frozen["w_in"] + h @ frozen["w_rec"] + frozen["b"])

  def sequence(params, h, xs, *, mask, restart, restart_carry, reverse):
    # The input drive x_t W_in + b of every step is one (T*B, D) @ (D, H)
    # product before the loop, which is left with the recurrent product alone.
    frozen = params[FROZEN]
    drives = xs @ frozen["w_in"]
    drives = drives + jnp.broadcast_to(frozen["b"], drives.shape)
    w_rec = frozen["w_rec"]
    if h.ndim == 1:
      # Unbatched, the step is a matrix-vector product; with W^T stored
      # row-major (one transpose before the loop) it reads W contiguously,
      # 1.4x faster than h @ W at H=2000 on CPU (benchmarks/esn_vs_reservoirpy.py).
      w_rec_t = w_rec.T

      def recurrent(h):
        return w_rec_t @ h
    else:
      def recurrent(h):
        return h @ w_rec

    def fast_step(h, drive):
      return update(h, drive + recurrent(h))

    return scan_steps(fast_step, h, drives, mask=mask, restart=restart,
                      restart_carry=restart_carry, reverse=reverse)

  return Cell(init, initial_carry, step, lambda params: params[FROZEN]["w_in"].shape[0],
              hidden_size, hidden_size,
              f"esn(hidden_size={hidden_size}, spectral_radius={spectral_radius}, "
              f"connectivity={connectivity}, leak_rate={leak_rate})",
              fast=FastPath(sequence, ("cpu", "gpu", "tpu"), step))
