"""Initialisers for recurrent weights, with the signature of ``jax.nn.initializers``.

Every initialiser here is a function ``(key, shape, dtype=jnp.float32) -> Array``
so it can be passed as ``kernel_init``/``recurrent_init``/``bias_init`` to any
seqjax cell, and any ``jax.nn.initializers`` function can be passed instead.
Shapes follow the ``x @ W`` convention: ``(fan_in, fan_out)``.

References:
  Saxe et al. 2014, "Exact solutions to the nonlinear dynamics of learning in
  deep linear networks" (orthogonal), https://arxiv.org/abs/1312.6120
  Le et al. 2015, "A Simple Way to Initialize Recurrent Networks of Rectified
  Linear Units" (IRNN), https://arxiv.org/abs/1504.00941
  Jaeger 2001, "The echo state approach to analysing and training recurrent
  neural networks" (spectral-radius scaling).
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from seqjax import checks

Initializer = Callable[..., jax.Array]

glorot_uniform = jax.nn.initializers.glorot_uniform
glorot_normal = jax.nn.initializers.glorot_normal
lecun_normal = jax.nn.initializers.lecun_normal
lecun_uniform = jax.nn.initializers.lecun_uniform
zeros = jax.nn.initializers.zeros
ones = jax.nn.initializers.ones


def constant(value: float) -> Initializer:
  """Every entry equal to ``value`` (e.g. a forget-gate bias)."""
  return jax.nn.initializers.constant(value)


def orthogonal(scale: float = 1.0) -> Initializer:
  """Orthogonal matrix (columns or rows orthonormal) times ``scale``, via QR.

  The sign of R's diagonal is folded into Q so the result is Haar-distributed.
  For a recurrent ``(H, k*H)`` matrix of stacked gates, each ``(H, H)`` block
  is orthogonal on its own (see ``blockwise``) when wrapped accordingly.
  """

  def init(key, shape, dtype=jnp.float32):
    if len(shape) != 2:
      raise ValueError(f"orthogonal: shape must be 2-D (fan_in, fan_out), got {shape}")
    rows, cols = shape
    n, m = max(rows, cols), min(rows, cols)
    a = jax.random.normal(key, (n, m), jnp.float32)
    q, r = jnp.linalg.qr(a)
    q = q * jnp.sign(jnp.diagonal(r))[None, :]
    if rows < cols:
      q = q.T
    return (scale * q).astype(dtype)

  return init


def identity(scale: float = 1.0) -> Initializer:
  """``scale * I`` (IRNN, Le et al. 2015); for non-square shapes, ``scale * eye``."""

  def init(key, shape, dtype=jnp.float32):
    del key
    if len(shape) != 2:
      raise ValueError(f"identity: shape must be 2-D, got {shape}")
    return (scale * jnp.eye(*shape)).astype(dtype)

  return init


def uniform_fan(fan: int | None = None) -> Initializer:
  """U(-1/sqrt(fan), 1/sqrt(fan)), PyTorch's default for every RNN weight.

  PyTorch uses ``fan = hidden_size`` for every weight and bias of ``nn.RNN``,
  ``nn.LSTM`` and ``nn.GRU``; pass it explicitly to match. With ``fan=None``
  the first dimension of the shape (fan-in) is used.
  """

  def init(key, shape, dtype=jnp.float32):
    f = fan if fan is not None else shape[0]
    bound = 1.0 / np.sqrt(f)
    return jax.random.uniform(key, shape, dtype, -bound, bound)

  return init


def blockwise(init: Initializer, num_blocks: int) -> Initializer:
  """Applies ``init`` to each of ``num_blocks`` equal column blocks.

  A gated cell stores its recurrent weights as one ``(H, k*H)`` matrix; an
  orthogonal init should make each gate's ``(H, H)`` block orthogonal, not the
  rectangle as a whole.
  """

  def wrapped(key, shape, dtype=jnp.float32):
    rows, cols = shape
    if cols % num_blocks:
      raise ValueError(f"blockwise: {cols} columns do not split into {num_blocks} blocks")
    keys = jax.random.split(key, num_blocks)
    blocks = [init(k, (rows, cols // num_blocks), dtype) for k in keys]
    return jnp.concatenate(blocks, axis=1)

  return wrapped


# Above this size the largest eigenvalue comes from ARPACK (as reservoirpy
# does) instead of all H eigenvalues: 2000 units take ~20 s for eigvals.
_ARPACK_MIN_SIZE = 256


def _eigvals_abs_max(w: np.ndarray) -> np.ndarray:
  w = np.asarray(w, np.float64)
  if w.shape[0] >= _ARPACK_MIN_SIZE:
    import scipy.sparse
    import scipy.sparse.linalg
    try:
      largest = scipy.sparse.linalg.eigs(scipy.sparse.csr_array(w), k=1, which="LM",
                                         return_eigenvectors=False, tol=1e-10)
      return np.abs(largest).max().astype(np.float32)
    except scipy.sparse.linalg.ArpackNoConvergence:
      pass  # rare; the dense route below is exact
  return np.max(np.abs(np.linalg.eigvals(w))).astype(np.float32)


@functools.partial(jax.jit, static_argnames=("iterations",))
def _power_iteration(w: jax.Array, key: jax.Array, iterations: int) -> jax.Array:
  v = jax.random.normal(key, (w.shape[0],), jnp.float32)
  v = v / jnp.linalg.norm(v)

  # Accumulate log-norms so that radii far from 1 neither overflow nor vanish.
  def body(carry, _):
    v, log_growth = carry
    u = w.astype(jnp.float32) @ v
    n = jnp.linalg.norm(u)
    return (u / jnp.maximum(n, 1e-30), log_growth + jnp.log(jnp.maximum(n, 1e-30))), None

  (_, log_growth), _ = jax.lax.scan(body, (v, jnp.float32(0.0)), None, length=iterations)
  return jnp.exp(log_growth / iterations)


def spectral_radius(w: jax.Array, *, method: str = "exact",
                    iterations: int = 100, key: jax.Array | None = None) -> jax.Array:
  """Largest absolute eigenvalue of a square matrix ``w`` (H, H).

  Args:
    w: square matrix.
    method: ``"exact"`` computes the eigenvalue of largest modulus in
      float64 on the host, via ``jax.pure_callback`` so it works under ``jit``
      on every backend (all eigenvalues for H < 256, ARPACK above);
      ``"power"`` estimates it on device by power iteration,
      ``||w^k v|| ** (1/k)``, which is cheap for large reservoirs and accurate to
      a few percent for random matrices after ~100 iterations.
    iterations: power-iteration steps.
    key: PRNG key for the power-iteration start vector.

  Returns:
    A float32 scalar.
  """
  checks.one_of("method", method, ("exact", "power"))
  w = jnp.asarray(w)
  if w.ndim != 2 or w.shape[0] != w.shape[1]:
    raise ValueError(f"w must be a square matrix, got shape {w.shape}")
  if method == "exact":
    return jax.pure_callback(_eigvals_abs_max, jax.ShapeDtypeStruct((), jnp.float32), w)
  key = jax.random.PRNGKey(0) if key is None else key
  return _power_iteration(w, key, checks.positive_int("iterations", iterations))


def scale_to_spectral_radius(w: jax.Array, radius: float, *,
                             method: str = "exact") -> jax.Array:
  """Rescales a square matrix so that its spectral radius equals ``radius``.

  Args:
    w: (H, H) matrix with a nonzero spectral radius.
    radius: target spectral radius, > 0.
    method: how the current radius is computed (see ``spectral_radius``).

  Returns:
    ``w * radius / spectral_radius(w)``.
  """
  checks.positive("spectral_radius", radius)
  current = spectral_radius(w, method=method)
  return (w * (radius / current)).astype(w.dtype)


def spectral(radius: float, base: Initializer | None = None, *,
             method: str = "exact") -> Initializer:
  """Initialiser: ``base`` (default N(0, 1)) rescaled to spectral radius ``radius``.

  Args:
    radius: target spectral radius, > 0.
    base: initialiser ``(key, shape, dtype) -> (H, H)`` drawn before rescaling;
      ``None`` for N(0, 1).
    method: how the drawn matrix's radius is computed, as for
      ``scale_to_spectral_radius``.

  Returns:
    An initialiser ``(key, shape, dtype=float32) -> (H, H)`` for square shapes.
  """
  checks.positive("spectral_radius", radius)
  base = base or jax.nn.initializers.normal(1.0)

  def init(key, shape, dtype=jnp.float32):
    return scale_to_spectral_radius(base(key, shape, dtype), radius, method=method)

  return init
