"""Particles joined by springs in the plane: a physics simulator that makes
training data for learned (graph-network) simulators.

P point masses move in 2-D, pulled along S springs by Hooke's law, optionally
slowed by a linear drag and kept in a square box by elastic walls. The family
is that of the "springs" set of Neural Relational Inference (Kipf et al. 2018:
particles in a box, random springs of rest length 0), with per-spring rest
lengths and stiffnesses and per-particle masses as options.

* ``SpringSystem`` describes one system; ``spring_system`` builds and checks
  one, ``random_system`` samples one (a random spring graph).
* ``forces``, ``accelerations`` and ``energy`` are the physics,
  ``simulate`` integrates it with velocity Verlet (symplectic, second order)
  under ``lax.scan``, and ``trajectories`` makes a seeded data set.
* For a learned simulator (Sanchez-Gonzalez et al. 2020): ``spring_edges``
  gives the springs as a directed edge list with features, the layout of
  jraph's ``GraphsTuple`` (``senders``, ``receivers``, ``edges``);
  ``finite_difference_targets`` turns positions into velocity inputs and
  acceleration targets, and ``rollout_step`` integrates predicted
  accelerations back into positions exactly the way the targets were made.

Shapes: T recorded steps (T + 1 frames, the initial state included), P
particles, S springs, N trajectories, *B any leading batch axes. Positions and
velocities are (..., P, 2), x then y. Everything is float32 unless the inputs
are float64 (with ``jax_enable_x64``); the computation runs in the dtype of the
positions.

The argument checks (positive masses, springs inside the particle range, dt >
0, ...) run on concrete inputs and raise a one-line ValueError naming the
argument; under ``jit`` the values are tracers and the checks are skipped.

References:
  Hooke 1678, "Lectures de potentia restitutiva, or of spring" (F = -k x).
  Verlet 1967, "Computer 'experiments' on classical fluids. I.
  Thermodynamical properties of Lennard-Jones molecules", Phys. Rev. 159(1).
  Swope, Andersen, Berens & Wilson 1982, "A computer simulation method for the
  calculation of equilibrium constants ...", J. Chem. Phys. 76(1) (the
  velocity form of Verlet's method).
  Strang 1968, "On the construction and comparison of difference schemes",
  SIAM J. Numer. Anal. 5(3) (symmetric splitting, used for the drag).
  Hairer, Lubich & Wanner 2003, "Geometric numerical integration illustrated
  by the Stormer-Verlet method", Acta Numerica 12; and their book "Geometric
  Numerical Integration", Springer 2006 (energy error O(h^2), bounded over
  long times).
  Kipf, Fetaya, Wang, Welling & Zemel 2018, "Neural Relational Inference for
  Interacting Systems", ICML, https://arxiv.org/abs/1802.04687
  Sanchez-Gonzalez, Godwin, Pfaff, Ying, Leskovec & Battaglia 2020, "Learning
  to Simulate Complex Physics with Graph Networks", ICML,
  https://arxiv.org/abs/2002.09405
"""

from __future__ import annotations

import functools
import itertools
import math
import numbers
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from seqjax import checks
from seqjax.types import Array


class SpringSystem(NamedTuple):
  """P particles in the plane joined by S Hooke springs.

  Every field may carry the same leading batch axes (``trajectories`` returns
  one system per trajectory, with a leading N); ``forces``, ``energy`` and
  ``simulate`` take one system.
  """

  masses: Array  # shape=(P,), float: m_i > 0.
  springs: Array  # shape=(S, 2), int32: the particles (i, j) spring s joins, i != j.
  rest_lengths: Array  # shape=(S,), float: L_s >= 0 (0: a force -k d, as in NRI).
  stiffness: Array  # shape=(S,), float: k_s >= 0.
  damping: Array  # shape=(), float: drag rate gamma >= 0 (1 / time); 0 is frictionless.
  box: Array  # shape=(), float: walls at |x| = box and |y| = box; inf for no walls.


class SpringTrajectories(NamedTuple):
  """A data set of simulated trajectories (numpy arrays), one system each."""

  positions: np.ndarray  # shape=(N, T + 1, P, 2): x_t, the initial frame first.
  velocities: np.ndarray  # shape=(N, T + 1, P, 2): v_t, the integrator's velocities.
  system: SpringSystem  # each field with a leading N: the system of each trajectory.


class SpringEdges(NamedTuple):
  """The springs as directed graph edges, both directions, in jraph's layout."""

  senders: Array  # shape=(*B, 2S), int32: i for the first S edges, j for the last S.
  receivers: Array  # shape=(*B, 2S), int32: j for the first S edges, i for the last S.
  features: Array  # shape=(*B, 2S, 2), float: (rest length L_s, stiffness k_s).


class FiniteDifferences(NamedTuple):
  """Velocity inputs and acceleration targets from positions (see ``finite_difference_targets``)."""

  velocities: Array  # shape=(*B, T, P, 2): [t] = v_{t+1} = (x_{t+1} - x_t) / dt.
  # shape=(*B, T - 1, P, 2): [t] = a_{t+1} = (x_{t+2} - 2 x_{t+1} + x_t) / dt^2.
  accelerations: Array


def _is_traced(*trees: Any) -> bool:
  return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(trees))


def _positive_scalar(name: str, value: Any) -> None:
  """A finite real > 0 (a Python number or a 0-d array); tracers pass unchecked."""
  if isinstance(value, jax.core.Tracer):
    return
  if isinstance(value, (bool, np.bool_)):
    raise TypeError(f"{name} must be a positive number, got {value!r}")
  array = np.asarray(value)
  if array.shape != () or not np.issubdtype(array.dtype, np.number):
    raise TypeError(f"{name} must be a positive number, got {value!r}")
  if not (array > 0 and np.isfinite(array)):
    raise ValueError(f"{name} must be finite and > 0, got {value}")


def _range_pair(name: str, value: Any, *, positive: bool) -> tuple[float, float]:
  """A pair (low, high) with 0 <= low <= high (0 < low if ``positive``), both finite."""
  if not (isinstance(value, (tuple, list)) and len(value) == 2
          and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value)):
    raise TypeError(f"{name} must be a pair of numbers (low, high), got {value!r}")
  low, high = float(value[0]), float(value[1])
  lowest_ok = low > 0 if positive else low >= 0
  if not (lowest_ok and low <= high and math.isfinite(high)):
    bound = "0 < low" if positive else "0 <= low"
    raise ValueError(f"{name} must be a pair (low, high) with {bound} <= high < inf, got {value!r}")
  return low, high


def _check_system(system: SpringSystem, *, batched: bool = True) -> None:
  """One-line ValueErrors naming the field; skipped for traced systems.

  ``batched=False`` also asks for one system (masses (P,)).
  """
  if not isinstance(system, SpringSystem):
    raise TypeError(f"system must be a SpringSystem, got {type(system).__name__}")
  if not batched and np.ndim(system.masses) != 1:
    raise ValueError(f"system must be one system with masses of shape (P,) (jax.vmap for a "
                     f"batch), got masses of shape {np.shape(system.masses)}")
  if _is_traced(system):
    return
  masses, springs = np.asarray(system.masses), np.asarray(system.springs)
  if masses.ndim < 1 or masses.shape[-1] < 1:
    raise ValueError(f"masses must have shape (P,) with P >= 1, got {masses.shape}")
  batch, num_particles = masses.shape[:-1], masses.shape[-1]
  if not (np.all(masses > 0) and np.all(np.isfinite(masses))):
    raise ValueError(f"masses must be finite and > 0, got {masses.min()}")
  if not np.issubdtype(springs.dtype, np.integer):
    raise TypeError(f"springs must hold integer particle indices, got dtype {springs.dtype}")
  if springs.ndim != len(batch) + 2 or springs.shape[:-2] != batch or springs.shape[-1] != 2:
    raise ValueError(f"springs must have shape {batch + ('S', 2)}, got {springs.shape}")
  if springs.size and (springs.min() < 0 or springs.max() >= num_particles):
    bad = springs.min() if springs.min() < 0 else springs.max()
    raise ValueError(f"springs must index particles in [0, {num_particles}), got {bad}")
  self_springs = np.argwhere(springs[..., 0] == springs[..., 1])
  if self_springs.size:
    where = tuple(int(k) for k in self_springs[0])
    raise ValueError(f"springs must join two different particles, springs{list(where)} = "
                     f"{springs[where].tolist()}")
  for name in ("rest_lengths", "stiffness"):
    value = np.asarray(getattr(system, name))
    if value.shape != springs.shape[:-1]:
      raise ValueError(f"{name} must have shape {springs.shape[:-1]} (one per spring), "
                       f"got {value.shape}")
    if not (np.all(value >= 0) and np.all(np.isfinite(value))):
      raise ValueError(f"{name} must be finite and >= 0, got {value.min()}")
  damping, box = np.asarray(system.damping), np.asarray(system.box)
  if damping.shape != batch or box.shape != batch:
    raise ValueError(f"damping and box must have shape {batch}, got {damping.shape} "
                     f"and {box.shape}")
  if not (np.all(damping >= 0) and np.all(np.isfinite(damping))):
    raise ValueError(f"damping must be finite and >= 0, got {damping.min()}")
  if not np.all(box > 0):
    raise ValueError(f"box must be > 0 (inf for no walls), got {box.min()}")


def _check_state(name: str, value: Any, system: SpringSystem) -> None:
  """``value`` is (*B, P, 2) float with P the system's particle count."""
  checks.float_array(name, value)
  shape, num_particles = checks.shape_of(value), np.shape(system.masses)[-1]
  if len(shape) < 2 or shape[-2:] != (num_particles, 2):
    raise ValueError(f"{name} must have shape (*B, {num_particles}, 2) for P = "
                     f"{num_particles} particles, got {shape}")


def _cast(system: SpringSystem, dtype: Any) -> SpringSystem:
  return system._replace(
      masses=jnp.asarray(system.masses, dtype),
      springs=jnp.asarray(system.springs, jnp.int32),
      rest_lengths=jnp.asarray(system.rest_lengths, dtype),
      stiffness=jnp.asarray(system.stiffness, dtype),
      damping=jnp.asarray(system.damping, dtype),
      box=jnp.asarray(system.box, dtype))


def spring_system(masses: Any,
                  springs: Any,
                  *,
                  rest_lengths: Any = 0.0,
                  stiffness: Any = 1.0,
                  damping: float = 0.0,
                  box: float | None = None,
                  dtype: Any = jnp.float32) -> SpringSystem:
  """A checked ``SpringSystem`` from masses, a spring edge list and constants.

  Args:
    masses: m, (P,), each > 0.
    springs: (S, 2) integer pairs (i, j), 0 <= i, j < P and i != j; S may be 0.
      A pair listed twice is two springs (their forces add).
    rest_lengths: L, (S,) or a scalar broadcast to every spring, >= 0.
    stiffness: k, (S,) or a scalar broadcast to every spring, >= 0.
    damping: gamma >= 0, the drag rate: each particle feels -gamma m_i v_i
      (its velocity decays like exp(-gamma t) when free); 0 is frictionless.
    box: walls at |x| = box and |y| = box that reflect particles elastically;
      None for no walls (stored as inf).
    dtype: float32 or float64 (float64 needs ``jax_enable_x64``).

  Returns:
    The ``SpringSystem``, float fields in ``dtype``, springs int32.

  Raises:
    ValueError: naming the argument, for non-positive masses, springs out of
      range or joining a particle to itself, negative rest lengths,
      stiffness or damping, or a box <= 0.
  """
  dtype = checks.float_dtype(dtype)
  springs = np.asarray(springs)
  if springs.size == 0:
    springs = springs.reshape(0, 2).astype(np.int32)
  if not np.issubdtype(springs.dtype, np.integer):
    raise TypeError(f"springs must hold integer particle indices, got dtype {springs.dtype}")
  if springs.ndim != 2 or springs.shape[1] != 2:
    raise ValueError(f"springs must have shape (S, 2), got {springs.shape}")
  num_springs = springs.shape[0]
  masses = np.asarray(masses, np.float64)
  if masses.ndim != 1:
    raise ValueError(f"masses must have shape (P,), got {masses.shape}")
  per_spring = {}
  for name, value in (("rest_lengths", rest_lengths), ("stiffness", stiffness)):
    value = np.asarray(value, np.float64)
    if value.shape not in ((), (num_springs,)):
      raise ValueError(f"{name} must be a scalar or have shape ({num_springs},), got {value.shape}")
    per_spring[name] = np.broadcast_to(value, (num_springs,))
  damping = checks.finite("damping", damping)
  box = math.inf if box is None else checks.positive("box", box)
  system = SpringSystem(masses=masses, springs=springs, damping=np.asarray(damping),
                        box=np.asarray(box), **per_spring)
  _check_system(system)
  return _cast(system, dtype)


def _safe_lengths(d: Array) -> tuple[Array, Array]:
  """|d| and 1/|d| along the last axis, 0 (with finite gradients) where d = 0."""
  squared = jnp.sum(d * d, axis=-1)
  nonzero = squared > 0
  length = jnp.sqrt(jnp.where(nonzero, squared, 1))
  return jnp.where(nonzero, length, 0), jnp.where(nonzero, 1 / length, 0)


def _spring_forces(positions: Array, system: SpringSystem) -> Array:
  i, j = system.springs[:, 0], system.springs[:, 1]
  d = positions[..., i, :] - positions[..., j, :]
  _, inverse_length = _safe_lengths(d)
  # -k (|d| - L) d/|d| written as -k d (1 - L/|d|), so that L = 0 (NRI) is the
  # plain linear force and a coincident pair (d = 0) feels nothing.
  scale = system.stiffness * (1 - system.rest_lengths * inverse_length)
  on_i = -scale[..., None] * d
  return jnp.zeros_like(positions).at[..., i, :].add(on_i).at[..., j, :].add(-on_i)


def _spring_accelerations(positions: Array, system: SpringSystem) -> Array:
  return _spring_forces(positions, system) / system.masses[:, None]


def forces(positions: Array, velocities: Array, system: SpringSystem) -> Array:
  """Forces on every particle: Hooke's law along each spring, plus drag.

  For spring s joining particles (i, j) with d = x_i - x_j::

    F_i += -k_s (|d| - L_s) d / |d|,    F_j -= the same      (equal and opposite)
    F_i += -gamma m_i v_i                                      (drag)

  With L_s = 0 the spring force is -k_s d (NRI's springs). A pair at the same
  point (d = 0) exerts no force, whatever L_s. Without drag the forces sum to
  zero, so total momentum is conserved.

  Args:
    positions: x, (*B, P, 2) float.
    velocities: v, (*B, P, 2) float (only the drag uses them).
    system: the ``SpringSystem`` (unbatched).

  Returns:
    F, (*B, P, 2) in the dtype of ``positions``.
  """
  _check_system(system, batched=False)
  _check_state("positions", positions, system)
  _check_state("velocities", velocities, system)
  return _forces(jnp.asarray(positions), velocities, system)


@jax.jit
def _forces(positions, velocities, system):
  system = _cast(system, positions.dtype)
  drag = -system.damping * system.masses[:, None] * jnp.asarray(velocities, positions.dtype)
  return _spring_forces(positions, system) + drag


def accelerations(positions: Array, velocities: Array, system: SpringSystem) -> Array:
  """Accelerations a_i = F_i / m_i of every particle (see ``forces``)::

    a_i = (1 / m_i) sum_{s = (i, j)} -k_s (|x_i - x_j| - L_s) (x_i - x_j) / |x_i - x_j|
          - gamma v_i

  the sum running over the springs at i in either direction.

  Args:
    positions: x, (*B, P, 2) float.
    velocities: v, (*B, P, 2) float (only the drag uses them).
    system: the ``SpringSystem`` (unbatched).

  Returns:
    a, (*B, P, 2) in the dtype of ``positions``.
  """
  _check_system(system, batched=False)
  _check_state("positions", positions, system)
  _check_state("velocities", velocities, system)
  return _accelerations(jnp.asarray(positions), velocities, system)


@jax.jit
def _accelerations(positions, velocities, system):
  return (_forces(positions, velocities, system)
          / jnp.asarray(system.masses, positions.dtype)[:, None])


def energy(positions: Array, velocities: Array, system: SpringSystem) -> Array:
  """Total mechanical energy, kinetic plus spring potential::

    E = sum_i m_i |v_i|^2 / 2 + sum_s k_s (|x_i - x_j| - L_s)^2 / 2

  Conserved by the exact frictionless dynamics (the walls are hard and add
  nothing inside the box); drag makes it decrease, dE/dt = -gamma sum_i m_i
  |v_i|^2.

  Args:
    positions: x, (*B, P, 2) float.
    velocities: v, (*B, P, 2) float.
    system: the ``SpringSystem`` (unbatched).

  Returns:
    E, (*B,) in the dtype of ``positions``.
  """
  _check_system(system, batched=False)
  _check_state("positions", positions, system)
  _check_state("velocities", velocities, system)
  return _energy(jnp.asarray(positions), velocities, system)


@jax.jit
def _energy(positions, velocities, system):
  system = _cast(system, positions.dtype)
  velocities = jnp.asarray(velocities, positions.dtype)
  kinetic = 0.5 * jnp.sum(system.masses[:, None] * velocities * velocities, axis=(-2, -1))
  i, j = system.springs[:, 0], system.springs[:, 1]
  length, _ = _safe_lengths(positions[..., i, :] - positions[..., j, :])
  stretch = length - system.rest_lengths
  potential = 0.5 * jnp.sum(system.stiffness * stretch * stretch, axis=-1)
  return kinetic + potential


def _reflect(positions: Array, velocities: Array, box: Array) -> tuple[Array, Array]:
  # NRI's _clamp: mirror a coordinate that crossed a wall back inside and point
  # its velocity inwards (assumes a step moves a particle less than 2 box).
  above, below = positions > box, positions < -box
  positions = jnp.where(above, 2 * box - positions, jnp.where(below, -2 * box - positions,
                                                              positions))
  velocities = jnp.where(above, -jnp.abs(velocities), jnp.where(below, jnp.abs(velocities),
                                                                velocities))
  return positions, velocities


@functools.partial(jax.jit, static_argnames=("steps", "substeps"))
def _simulate(system, x0, v0, dt, steps, substeps):
  h = dt / substeps
  decay = jnp.exp(-0.5 * h * system.damping)

  def substep(state, _):
    x, v, a = state
    v = decay * v + 0.5 * h * a
    x = x + h * v
    x, v = _reflect(x, v, system.box)
    a = _spring_accelerations(x, system)
    v = decay * (v + 0.5 * h * a)
    return (x, v, a), None

  def record(state, _):
    state, _ = jax.lax.scan(substep, state, None, length=substeps)
    return state, state[:2]

  state = (x0, v0, _spring_accelerations(x0, system))
  _, (xs, vs) = jax.lax.scan(record, state, None, length=steps)
  return jnp.concatenate([x0[None], xs]), jnp.concatenate([v0[None], vs])


def simulate(system: SpringSystem, x0: Array, v0: Array, *, dt: float, steps: int,
             substeps: int = 1) -> tuple[Array, Array]:
  """Integrates the system with velocity Verlet, recording every ``dt``.

  Each recorded step is ``substeps`` steps of size h = dt / substeps. One step
  of velocity Verlet (Verlet 1967; Swope et al. 1982), with the drag split off
  symmetrically and solved exactly (Strang 1968; c = exp(-gamma h / 2))::

    v <- c v + (h/2) a(x)
    x <- x + h v                 (then reflected at the walls, if any)
    v <- c (v + (h/2) a(x))

  where a(x) is the spring part of ``accelerations``. Frictionless (gamma =
  0) it is the Stormer-Verlet scheme x_{n+1} = 2 x_n - x_{n-1} + h^2 a(x_n):
  symplectic and time-reversible, its energy error O(h^2) and bounded over
  long times rather than drifting (Hairer, Lubich & Wanner 2003). It is
  stable for h omega < 2, omega the fastest normal mode (for two bodies,
  omega = sqrt(k / mu), mu = m_1 m_2 / (m_1 + m_2)); choose ``substeps`` so
  that h omega is well below 1 for accurate data. A wall reflects the
  coordinate that crossed it and reverses that velocity component (Kipf et al.
  2018), which keeps kinetic energy; the bounce is resolved only to within a
  step (the forces of that step act as if it fell at its middle), so with walls
  the energy error grows by O(h) per bounce instead of staying O(h^2).

  Jittable, ``steps`` and ``substeps`` static; one ``lax.scan`` over the
  recorded steps, each an inner scan of the substeps. Forces are evaluated
  once per substep.

  Args:
    system: the ``SpringSystem`` (unbatched; ``jax.vmap`` for many).
    x0: initial positions, (P, 2) float, inside the box if there is one.
    v0: initial velocities, (P, 2) float.
    dt: time between recorded frames, > 0.
    steps: T, the number of recorded steps, >= 1.
    substeps: integration steps per recorded step, >= 1.

  Returns:
    ``(positions, velocities)``, each (T + 1, P, 2) in the dtype of ``x0``,
    frame t at time t dt (frame 0 is ``(x0, v0)``).

  Raises:
    ValueError: naming the argument, for dt <= 0, steps or substeps < 1, an
      invalid system, states of the wrong shape or outside the box.
  """
  steps = checks.positive_int("steps", steps)
  substeps = checks.positive_int("substeps", substeps)
  _positive_scalar("dt", dt)
  _check_system(system, batched=False)
  _check_state("x0", x0, system)
  _check_state("v0", v0, system)
  if np.ndim(x0) != 2 or np.ndim(v0) != 2:
    raise ValueError(f"x0 and v0 must have shape (P, 2) (vmap for a batch), got "
                     f"{np.shape(x0)} and {np.shape(v0)}")
  if not _is_traced(x0, system.box) and np.any(np.abs(np.asarray(x0)) > np.asarray(system.box)):
    box = float(system.box)
    raise ValueError(f"x0 must lie inside the box [-{box}, {box}]^2, got {np.asarray(x0).tolist()}")
  x0 = jnp.asarray(x0)
  dtype = x0.dtype
  return _simulate(_cast(system, dtype), x0, jnp.asarray(v0, dtype), jnp.asarray(dt, dtype),
                   steps, substeps)


def random_system(key: Array,
                  num_particles: int,
                  *,
                  num_springs: int | None = None,
                  mass_range: tuple[float, float] = (1.0, 1.0),
                  stiffness_range: tuple[float, float] = (0.1, 0.1),
                  rest_length_range: tuple[float, float] = (0.0, 0.0),
                  damping: float = 0.0,
                  box: float | None = None,
                  dtype: Any = jnp.float32) -> SpringSystem:
  """A system with a random spring graph (jittable and vmappable over ``key``).

  The springs are ``num_springs`` distinct pairs drawn uniformly from the P (P
  - 1) / 2 pairs of particles (the G(P, S) random graph), listed as (i, j)
  with i < j in increasing order. Masses, stiffnesses and rest lengths are
  drawn independently and uniformly from their ranges (a range (a, a) fixes
  the value). The defaults are NRI's springs (Kipf et al. 2018): unit masses,
  k = 0.1, rest length 0, and half the pairs connected (NRI connects each pair
  with probability 1/2, a random S; here S is fixed so that systems batch);
  NRI also has walls at box = 5.

  Args:
    key: a ``jax.random`` key.
    num_particles: P, >= 1.
    num_springs: S, 0 <= S <= P (P - 1) / 2; None for P (P - 1) // 4, half the
      pairs rounded down.
    mass_range: (low, high), 0 < low <= high.
    stiffness_range: (low, high), 0 <= low <= high.
    rest_length_range: (low, high), 0 <= low <= high.
    damping: gamma >= 0, the drag rate (see ``spring_system``).
    box: half-width of the walls, > 0, or None for no walls.
    dtype: float32 or float64 (float64 needs ``jax_enable_x64``).

  Returns:
    A ``SpringSystem`` with P particles and S springs.
  """
  shape, values = _system_arguments(num_particles, num_springs, mass_range, stiffness_range,
                                    rest_length_range, damping, box, dtype)
  return _sample_system(key, values, **shape)


def _system_arguments(num_particles, num_springs, mass_range, stiffness_range,
                      rest_length_range, damping, box, dtype):
  """``random_system``'s arguments checked: the static ones (shapes, dtype) and
  the values (traced, so that changing them does not recompile)."""
  num_particles = checks.positive_int("num_particles", num_particles)
  num_pairs = num_particles * (num_particles - 1) // 2
  if num_springs is None:
    num_springs = num_pairs // 2
  num_springs = checks.non_negative_int("num_springs", num_springs)
  if num_springs > num_pairs:
    raise ValueError(f"num_springs must be <= P (P - 1) / 2 = {num_pairs} for P = "
                     f"{num_particles}, got {num_springs}")
  damping = checks.finite("damping", damping)
  if damping < 0:
    raise ValueError(f"damping must be >= 0, got {damping}")
  dtype = checks.float_dtype(dtype)
  values = dict(
      mass_range=_range_pair("mass_range", mass_range, positive=True),
      stiffness_range=_range_pair("stiffness_range", stiffness_range, positive=False),
      rest_length_range=_range_pair("rest_length_range", rest_length_range, positive=False),
      damping=damping, box=math.inf if box is None else checks.positive("box", box))
  values = jax.tree_util.tree_map(lambda v: np.asarray(v, dtype), values)
  return dict(num_particles=num_particles, num_springs=num_springs, dtype=dtype), values


@functools.partial(jax.jit, static_argnames=("num_particles", "num_springs", "dtype"))
def _sample_system(key, values, *, num_particles, num_springs, dtype):
  pairs = np.array(list(itertools.combinations(range(num_particles), 2)),
                   np.int32).reshape(-1, 2)
  pick_key, mass_key, stiffness_key, rest_length_key = jax.random.split(key, 4)
  chosen = jnp.sort(jax.random.permutation(pick_key, len(pairs))[:num_springs])
  return SpringSystem(
      masses=jax.random.uniform(mass_key, (num_particles,), dtype, *values["mass_range"]),
      springs=jnp.asarray(pairs)[chosen],
      rest_lengths=jax.random.uniform(rest_length_key, (num_springs,), dtype,
                                      *values["rest_length_range"]),
      stiffness=jax.random.uniform(stiffness_key, (num_springs,), dtype,
                                   *values["stiffness_range"]),
      damping=values["damping"],
      box=values["box"])


def _initial_state(key, num_particles, position_std, speed, box, dtype):
  position_key, direction_key = jax.random.split(key)
  x0 = position_std * jax.random.normal(position_key, (num_particles, 2), dtype)
  direction = jax.random.normal(direction_key, (num_particles, 2), dtype)
  _, inverse_length = _safe_lengths(direction)
  v0 = speed * direction * inverse_length[:, None]
  x0, v0 = _reflect(x0, v0, box)
  return jnp.clip(x0, -box, box), v0


@functools.partial(jax.jit, static_argnames=(
    "num_trajectories", "steps", "substeps", "num_particles", "num_springs", "dtype"))
def _trajectories(key, dt, values, position_std, speed, *, num_trajectories, steps, substeps,
                  num_particles, num_springs, dtype):

  def one(index):
    system_key, state_key = jax.random.split(jax.random.fold_in(key, index))
    system = _sample_system(system_key, values, num_particles=num_particles,
                            num_springs=num_springs, dtype=dtype)
    x0, v0 = _initial_state(state_key, num_particles, position_std, speed, system.box, dtype)
    positions, velocities = _simulate(system, x0, v0, dt, steps, substeps)
    return positions, velocities, system

  return jax.vmap(one)(jnp.arange(num_trajectories))


def trajectories(seed: int,
                 num_trajectories: int,
                 num_particles: int,
                 steps: int,
                 dt: float,
                 *,
                 substeps: int = 1,
                 num_springs: int | None = None,
                 mass_range: tuple[float, float] = (1.0, 1.0),
                 stiffness_range: tuple[float, float] = (0.1, 0.1),
                 rest_length_range: tuple[float, float] = (0.0, 0.0),
                 damping: float = 0.0,
                 box: float | None = None,
                 position_std: float = 0.5,
                 speed: float = 0.5,
                 dtype: Any = jnp.float32) -> SpringTrajectories:
  """A seeded data set of N simulated trajectories, each with its own system.

  Trajectory n uses the key ``fold_in(key(seed), n)``: a ``random_system``
  (a new spring graph, masses, stiffnesses, rest lengths), initial positions
  x_0 ~ N(0, position_std^2) per coordinate and initial velocities of norm
  ``speed`` in uniformly random directions (NRI's initial state, Kipf et al.
  2018, whose set is ``dt=0.1, substeps=100`` with the defaults and
  ``box=5``), then ``simulate``. The same arguments give the same arrays, and
  the first n trajectories do not depend on ``num_trajectories``.

  Args:
    seed: an int >= 0.
    num_trajectories: N, >= 1.
    num_particles: P, >= 1.
    steps: T, recorded steps per trajectory, >= 1.
    dt: time between recorded frames, > 0.
    substeps: integration steps per recorded step, >= 1 (see ``simulate``).
    num_springs: S per system (see ``random_system``).
    mass_range: (low, high) of the uniform masses, 0 < low <= high.
    stiffness_range: (low, high) of the uniform stiffnesses, 0 <= low <= high.
    rest_length_range: (low, high) of the uniform rest lengths, 0 <= low <= high.
    damping: gamma >= 0, the same for every system.
    box: half-width of the walls, or None for no walls (the default).
    position_std: standard deviation of the initial positions, > 0.
    speed: norm of every initial velocity, >= 0.
    dtype: float32 or float64 (float64 needs ``jax_enable_x64``).

  Returns:
    ``SpringTrajectories(positions, velocities, system)`` as numpy arrays:
    positions and velocities (N, T + 1, P, 2), and the systems with a leading
    N on every field (masses (N, P), springs (N, S, 2), ...).
  """
  seed = checks.non_negative_int("seed", seed)
  num_trajectories = checks.positive_int("num_trajectories", num_trajectories)
  steps = checks.positive_int("steps", steps)
  substeps = checks.positive_int("substeps", substeps)
  _positive_scalar("dt", dt)
  position_std = checks.positive("position_std", position_std)
  speed = checks.finite("speed", speed)
  if speed < 0:
    raise ValueError(f"speed must be >= 0, got {speed}")
  shape, values = _system_arguments(num_particles, num_springs, mass_range, stiffness_range,
                                    rest_length_range, damping, box, dtype)
  dtype = shape["dtype"]
  positions, velocities, system = _trajectories(
      jax.random.key(seed), np.asarray(dt, dtype), values, np.asarray(position_std, dtype),
      np.asarray(speed, dtype), num_trajectories=num_trajectories, steps=steps,
      substeps=substeps, **shape)
  return SpringTrajectories(np.asarray(positions), np.asarray(velocities),
                            jax.tree_util.tree_map(np.asarray, system))


def spring_edges(system: SpringSystem) -> SpringEdges:
  """The springs as directed edges in both directions, with edge features.

  Spring s = (i, j) becomes edge s (sender i, receiver j) and edge S + s
  (sender j, receiver i), both with features (L_s, k_s), so that a graph
  network that aggregates messages at receivers (jraph's ``GraphsTuple``:
  ``senders``, ``receivers``, ``edges``) sees every spring from both ends.
  Node features (e.g. ``system.masses``, recent velocities) and relative
  displacements x_sender - x_receiver are the graph builder's to add.

  Args:
    system: a ``SpringSystem``, possibly with leading batch axes *B (one graph
      per system; concatenating graphs into one ``GraphsTuple`` offsets the
      indices by the particles before them).

  Returns:
    ``SpringEdges(senders, receivers, features)``: (*B, 2S) int32, (*B, 2S)
    int32 and (*B, 2S, 2) in the dtype of ``system.stiffness``.
  """
  _check_system(system)
  springs = jnp.asarray(system.springs, jnp.int32)
  senders = jnp.concatenate([springs[..., 0], springs[..., 1]], axis=-1)
  receivers = jnp.concatenate([springs[..., 1], springs[..., 0]], axis=-1)
  stiffness = jnp.asarray(system.stiffness)
  features = jnp.stack([jnp.asarray(system.rest_lengths, stiffness.dtype), stiffness], axis=-1)
  return SpringEdges(senders, receivers, jnp.concatenate([features, features], axis=-2))


def finite_difference_targets(positions: Array, dt: float) -> FiniteDifferences:
  """Velocity inputs and acceleration targets from a position sequence.

  As in Sanchez-Gonzalez et al. 2020, a learned simulator sees velocities
  made by backward differences of positions and predicts the acceleration that
  the second difference gives::

    v_t = (x_t - x_{t-1}) / dt                       t = 1, ..., T
    a_t = (v_{t+1} - v_t) / dt = (x_{t+1} - 2 x_t + x_{t-1}) / dt^2,
                                                     t = 1, ..., T - 1

  ``rollout_step`` inverts the second equation. For a frictionless
  trajectory from ``simulate`` with ``substeps=1`` and no walls, a_t equals
  ``accelerations(x_t)`` (Stormer-Verlet is x_{t+1} = 2 x_t - x_{t-1} + dt^2
  a(x_t)); with substeps it approximates it to O(dt^2).

  Args:
    positions: x, (*B, T + 1, P, 2) float with T + 1 >= 3 frames; time is the
      third axis from the end.
    dt: time between frames, > 0.

  Returns:
    ``FiniteDifferences(velocities, accelerations)``: velocities (*B, T, P, 2)
    with ``velocities[..., t, :, :] = v_{t+1}``, and accelerations
    (*B, T - 1, P, 2) with ``accelerations[..., t, :, :] = a_{t+1}``, the
    target for the history that ends at frame t + 1.
  """
  checks.float_array("positions", positions)
  shape = checks.shape_of(positions)
  if len(shape) < 3 or shape[-1] != 2 or shape[-3] < 3:
    raise ValueError(f"positions must have shape (*B, T + 1, P, 2) with T + 1 >= 3 frames, "
                     f"got {shape}")
  _positive_scalar("dt", dt)
  return _finite_differences(jnp.asarray(positions), dt)


@jax.jit
def _finite_differences(positions, dt):
  dt = jnp.asarray(dt, positions.dtype)
  velocities = jnp.diff(positions, axis=-3) / dt
  return FiniteDifferences(velocities, jnp.diff(velocities, axis=-3) / dt)


def rollout_step(position: Array, previous_position: Array, acceleration: Array,
                 dt: float) -> Array:
  """One semi-implicit Euler step from an acceleration (Sanchez-Gonzalez et al. 2020)::

    v_t     = (x_t - x_{t-1}) / dt
    v_{t+1} = v_t + a_t dt
    x_{t+1} = x_t + v_{t+1} dt

  the inverse of ``finite_difference_targets``: fed the targets a_t it
  reproduces the trajectory up to rounding, so a model's predicted
  accelerations are integrated exactly the way its targets were made.

  Args:
    position: x_t, (*B, P, 2) float.
    previous_position: x_{t-1}, the same shape.
    acceleration: a_t, the same shape (e.g. a model's prediction).
    dt: time between frames, > 0.

  Returns:
    x_{t+1}, (*B, P, 2) in the dtype of ``position``.
  """
  checks.float_array("position", position)
  shapes = {name: checks.shape_of(value) for name, value in (
      ("position", position), ("previous_position", previous_position),
      ("acceleration", acceleration))}
  if len(set(shapes.values())) != 1:
    raise ValueError(f"position, previous_position and acceleration must have the same "
                     f"shape, got {shapes}")
  _positive_scalar("dt", dt)
  return _rollout_step(jnp.asarray(position), previous_position, acceleration, dt)


@jax.jit
def _rollout_step(position, previous_position, acceleration, dt):
  dtype = position.dtype
  dt = jnp.asarray(dt, dtype)
  velocity = (position - jnp.asarray(previous_position, dtype)) / dt
  next_velocity = velocity + jnp.asarray(acceleration, dtype) * dt
  return position + next_velocity * dt
