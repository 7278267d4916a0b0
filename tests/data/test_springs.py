"""The spring simulator against a numpy loop, the harmonic oscillator, energy and
momentum conservation, damping's power balance and reflecting walls; the
learned-simulator helpers (finite differences, rollout, edges) and the data set."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax.data import springs

# A regular hexagon of particles, rim and long diagonals, rest lengths those of
# the hexagon: a nonlinear (L > 0) system that stays clear of collisions.
_ANGLES = np.arange(6) * np.pi / 3
_HEXAGON = np.stack([np.cos(_ANGLES), np.sin(_ANGLES)], -1)
_PAIRS = np.array([[i, (i + 1) % 6] for i in range(6)] + [[0, 3], [1, 4], [2, 5]])
_REST = np.linalg.norm(_HEXAGON[_PAIRS[:, 0]] - _HEXAGON[_PAIRS[:, 1]], axis=-1)


# One shape for every data set the tests draw (4 trajectories of 5 particles,
# 100 frames 0.1 apart, 10 substeps each), so that one compilation serves them
# all; the values (ranges, damping, box, speed) are traced.
_SHAPE = dict(num_trajectories=4, num_particles=5, steps=100, dt=0.1, substeps=10)
_RANGES = dict(mass_range=(0.5, 2.0), stiffness_range=(0.5, 2.0), rest_length_range=(0.0, 1.0))


@functools.lru_cache(maxsize=None)
def _data(seed, **kwargs):
  return springs.trajectories(seed, **_SHAPE, **{**_RANGES, **kwargs})


def _system(data, n):
  return jax.tree_util.tree_map(lambda a: a[n], data.system)


def _hexagon(dtype=np.float32, damping=0.0):
  rng = np.random.default_rng(0)
  system = springs.spring_system(rng.uniform(0.5, 2.0, 6), _PAIRS, rest_lengths=_REST,
                                 stiffness=rng.uniform(0.5, 2.0, 9), damping=damping,
                                 dtype=dtype)
  x0 = (_HEXAGON + 0.2 * rng.normal(size=(6, 2))).astype(dtype)
  v0 = (0.5 * rng.normal(size=(6, 2))).astype(dtype)
  return system, x0, v0


def _numpy_forces(x, v, masses, pairs, rest, stiffness, damping):
  """Hooke's law written out spring by spring, in float64."""
  x, v = np.asarray(x, np.float64), np.asarray(v, np.float64)
  force = -damping * masses[:, None] * v
  for s, (i, j) in enumerate(pairs):
    d = x[i] - x[j]
    length = np.sqrt(d @ d)
    f = -stiffness[s] * (length - rest[s]) * d / length
    force[i] += f
    force[j] -= f
  return force


def _numpy_energy(x, v, masses, pairs, rest, stiffness):
  kinetic = sum(0.5 * masses[i] * (v[i] @ v[i]) for i in range(len(masses)))
  potential = sum(0.5 * stiffness[s] * (np.linalg.norm(x[i] - x[j]) - rest[s]) ** 2
                  for s, (i, j) in enumerate(pairs))
  return kinetic + potential


def test_forces_accelerations_energy_match_numpy_loop():
  rng = np.random.default_rng(1)
  masses, stiffness = rng.uniform(0.5, 2, 5), rng.uniform(0.5, 2, 6)
  pairs = np.array([[0, 1], [1, 2], [2, 0], [3, 4], [4, 0], [3, 4]])  # (3, 4) twice
  rest = np.array([0.0, 1.0, 0.5, 0.7, 0.0, 1.2])
  system = springs.spring_system(masses, pairs, rest_lengths=rest, stiffness=stiffness,
                                 damping=0.3)
  x = rng.normal(size=(3, 5, 2)).astype(np.float32)  # a batch of 3 states
  v = rng.normal(size=(3, 5, 2)).astype(np.float32)
  want = np.stack([_numpy_forces(x[b], v[b], masses, pairs, rest, stiffness, 0.3)
                   for b in range(3)])
  got = springs.forces(x, v, system)
  assert got.shape == (3, 5, 2) and got.dtype == jnp.float32
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(jax.jit(springs.accelerations)(x, v, system),
                             want / masses[:, None], rtol=1e-5, atol=1e-5)
  energy = springs.energy(x, v, system)
  assert energy.shape == (3,)
  np.testing.assert_allclose(energy, [_numpy_energy(x[b], v[b], masses, pairs, rest, stiffness)
                                      for b in range(3)], rtol=1e-5)
  with jax.enable_x64(True):
    system64 = springs.spring_system(masses, pairs, rest_lengths=rest, stiffness=stiffness,
                                     damping=0.3, dtype=np.float64)
    x64, v64 = x.astype(np.float64), v.astype(np.float64)
    got64 = springs.forces(x64, v64, system64)
    assert got64.dtype == jnp.float64
    np.testing.assert_allclose(got64, want, rtol=1e-12, atol=1e-12)
  # A spring of positive rest length whose ends coincide exerts no force, and
  # the energy's gradient stays finite there.
  x_same = x[0].copy()
  x_same[2] = x_same[1]
  frictionless = system._replace(damping=jnp.zeros((), jnp.float32))
  keep = np.arange(6) != 1
  want_same = _numpy_forces(x_same, v[0], masses, pairs[keep], rest[keep], stiffness[keep], 0)
  np.testing.assert_allclose(springs.forces(x_same, v[0], frictionless), want_same,
                             rtol=1e-5, atol=1e-5)
  gradient = jax.grad(lambda p: springs.energy(p, v[0], frictionless))(jnp.asarray(x_same))
  assert np.all(np.isfinite(gradient))


def test_momentum_is_conserved():
  data = _data(0)
  for n in range(4):
    system = _system(data, n)
    force = np.asarray(springs.forces(data.positions[n], data.velocities[n], system))
    scale = np.abs(force).sum(axis=(-2, -1), keepdims=True)[..., 0]
    assert np.all(np.abs(force.sum(axis=-2)) <= 1e-5 * scale)  # (T + 1, 2)
    momentum = (system.masses[:, None] * data.velocities[n]).sum(axis=-2)
    np.testing.assert_allclose(momentum, np.broadcast_to(momentum[0], momentum.shape),
                               atol=2e-5)


def _two_body_exact(t, masses, x0, v0, omega, rest_length):
  """The analytic two-body solution: the centre of mass moves uniformly and the
  separation r = x_0 - x_1 oscillates about the rest length with omega =
  sqrt(k / mu), mu = m_0 m_1 / (m_0 + m_1) (radially, for L > 0)."""
  total = masses.sum()
  centre = (masses @ x0) / total + np.outer(t, (masses @ v0) / total)
  r0, u0 = x0[0] - x0[1], v0[0] - v0[1]
  cos, sin = np.cos(omega * t)[:, None], np.sin(omega * t)[:, None]
  if rest_length == 0:
    r = r0 * cos + u0 / omega * sin
  else:
    direction = r0 / np.linalg.norm(r0)
    stretch = (np.linalg.norm(r0) - rest_length) * cos + (u0 @ direction) / omega * sin
    r = (rest_length + stretch) * direction
  return np.stack([centre + masses[1] / total * r, centre - masses[0] / total * r], axis=1)


@pytest.mark.parametrize("rest_length", [0.0, 1.5])
def test_two_bodies_match_the_harmonic_oscillator(rest_length):
  masses, stiffness = np.array([1.0, 3.0]), 3.0
  omega = np.sqrt(stiffness / (masses[0] * masses[1] / masses.sum()))  # = 2
  if rest_length == 0:  # any motion in the plane
    x0, v0 = np.array([[0.3, -0.2], [1.0, 0.5]]), np.array([[0.1, 0.4], [-0.2, 0.0]])
  else:  # separation and relative velocity along one line; the centre moves across it
    x0 = np.array([[2.0, 0.0], [0.0, 0.0]]) @ np.array([[0.6, 0.8], [-0.8, 0.6]])
    v0 = np.array([[0.3, 0.4], [0.0, 0.0]]) + np.array([[-0.2, 0.1]])
  exact = _two_body_exact(0.1 * np.arange(101), masses, x0, v0, omega, rest_length)
  errors = []
  with jax.enable_x64(True):
    system = springs.spring_system(masses, [[0, 1]], rest_lengths=rest_length,
                                   stiffness=stiffness, dtype=np.float64)
    for substeps in (10, 20):
      positions, _ = springs.simulate(system, x0, v0, dt=0.1, steps=100, substeps=substeps)
      assert positions.shape == (101, 2, 2) and positions.dtype == jnp.float64
      errors.append(np.abs(positions - exact).max())
  # Verlet's phase error ~ A omega^3 h^2 t / 24 ~ 2e-4 at h = 0.01, t = 10.
  assert errors[0] < 1e-3
  assert 3.8 < errors[0] / errors[1] < 4.2  # second order
  system32 = springs.spring_system(masses, [[0, 1]], rest_lengths=rest_length,
                                   stiffness=stiffness)
  positions, _ = springs.simulate(system32, x0.astype(np.float32), v0.astype(np.float32),
                                  dt=0.1, steps=100, substeps=10)
  assert positions.dtype == jnp.float32
  np.testing.assert_allclose(positions, exact, atol=2e-3)


def test_energy_error_is_second_order_and_bounded():
  # Frictionless velocity Verlet: the relative energy error is O(h^2), so it
  # drops 4x when h halves (here over t = 10), and stays bounded over long runs.
  with jax.enable_x64(True):
    system, x0, v0 = _hexagon(np.float64)
    drift = []
    for substeps in (1, 2, 4):
      positions, velocities = springs.simulate(system, x0, v0, dt=0.05, steps=200,
                                               substeps=substeps)
      energy = np.asarray(springs.energy(positions, velocities, system))
      drift.append(np.abs(energy / energy[0] - 1).max())
  assert drift[0] < 2e-3  # at h = 0.05: 1.0e-3
  np.testing.assert_allclose(np.array(drift[:-1]) / drift[1:], 4.0, rtol=0.05)
  # Float32 over 4,000 steps (t = 200): the same bound, and no growth from the
  # first half of the run to the second.
  system, x0, v0 = _hexagon(np.float32)
  positions, velocities = springs.simulate(system, x0, v0, dt=0.05, steps=4000)
  energy = np.asarray(springs.energy(positions, velocities, system), np.float64)
  relative = np.abs(energy / energy[0] - 1)
  assert relative.max() < 5e-3
  assert relative[2000:].max() < 2 * relative[:2000].max()


def test_damping_dissipates_energy_at_the_drag_rate():
  damping = 0.2
  data = _data(1, damping=damping)
  for n in range(4):
    system = _system(data, n)
    energy = np.asarray(springs.energy(data.positions[n], data.velocities[n], system),
                        np.float64)
    assert np.all(np.diff(energy) < 0)
    assert energy[-1] < 0.2 * energy[0]
    # Power balance dE/dt = -gamma sum m |v|^2, integrated by the trapezoid rule.
    power = -damping * np.einsum("p,tpd->t", system.masses, data.velocities[n] ** 2)
    dissipated = np.sum(0.1 * (power[1:] + power[:-1]) / 2)
    np.testing.assert_allclose(energy[-1] - energy[0], dissipated, rtol=5e-3)
  # A free particle: v(t) = v0 exp(-gamma t) exactly (the drag is solved, not
  # approximated), x(t) = x0 + v0 (1 - exp(-gamma t)) / gamma to O(h^2).
  free = springs.spring_system([2.0], np.zeros((0, 2), np.int32), damping=0.5)
  x0, v0 = np.array([[0.5, -1.0]], np.float32), np.array([[1.0, 2.0]], np.float32)
  positions, velocities = springs.simulate(free, x0, v0, dt=0.2, steps=50, substeps=4)
  decay = np.exp(-0.5 * 0.2 * np.arange(51))[:, None, None]
  np.testing.assert_allclose(velocities, v0 * decay, rtol=1e-5)
  np.testing.assert_allclose(positions, x0 + v0 * (1 - decay) / 0.5, rtol=1e-3, atol=1e-4)


def test_walls_reflect_elastically():
  # A free particle in the box [-1, 1]^2 follows the straight line folded back
  # at the walls (a triangle wave in each coordinate).
  box = 1.0
  free = springs.spring_system([1.0], np.zeros((0, 2), np.int32), box=box)
  x0, v0 = np.array([[0.35, -0.2]], np.float32), np.array([[0.7, -1.3]], np.float32)
  positions, velocities = springs.simulate(free, x0, v0, dt=0.1, steps=60, substeps=3)
  unfolded = x0 + v0 * 0.1 * np.arange(61)[:, None, None]
  phase = np.mod(unfolded + box, 4 * box)
  np.testing.assert_allclose(positions, box - np.abs(phase - 2 * box), atol=1e-5)
  np.testing.assert_allclose(velocities, v0 * np.where(phase < 2 * box, 1, -1), atol=1e-6)
  # Springs in a box: the particles stay inside and the energy is kept to
  # O(h) per bounce (a bounce is resolved to within a step; 0.6% here).
  data = _data(2, box=0.6, speed=1.0)
  assert np.abs(data.positions).max() <= 0.6
  assert np.any(np.abs(data.positions) > 0.55)  # the walls were reached
  for n in range(4):
    system = _system(data, n)
    energy = np.asarray(springs.energy(data.positions[n], data.velocities[n], system))
    np.testing.assert_allclose(energy, energy[0], rtol=2e-2)


def test_finite_difference_targets_and_rollout_reproduce_the_trajectory():
  dt = 0.1
  with jax.enable_x64(True):
    system, x0, v0 = _hexagon(np.float64)
    positions, _ = springs.simulate(system, x0, v0, dt=dt, steps=120)
    targets = springs.finite_difference_targets(positions, dt)
    x = np.asarray(positions)
    np.testing.assert_allclose(targets.velocities, (x[1:] - x[:-1]) / dt, rtol=1e-12)
    np.testing.assert_allclose(targets.accelerations, (x[2:] - 2 * x[1:-1] + x[:-2]) / dt ** 2,
                               rtol=1e-9, atol=1e-9)
    # Stormer-Verlet is x_{t+1} = 2 x_t - x_{t-1} + dt^2 a(x_t): with one
    # substep and no drag the targets are the true accelerations at x_1..x_{T-1}.
    true = springs.accelerations(positions[1:-1], jnp.zeros_like(positions[1:-1]), system)
    np.testing.assert_allclose(targets.accelerations, true, atol=1e-9)
    rolled = [x[0], x[1]]
    for a in targets.accelerations:
      rolled.append(np.asarray(springs.rollout_step(rolled[-1], rolled[-2], a, dt)))
    np.testing.assert_allclose(np.stack(rolled), x, atol=1e-10)
  # Float32, batched over trajectories, 100 steps of a jitted scan.
  data = _data(3)
  targets = springs.finite_difference_targets(data.positions, dt)
  assert targets.velocities.shape == (4, 100, 5, 2)
  assert targets.accelerations.shape == (4, 99, 5, 2)

  def step(carry, acceleration):
    previous, current = carry
    following = springs.rollout_step(current, previous, acceleration, dt)
    return (current, following), following

  first = (jnp.asarray(data.positions[:, 0]), jnp.asarray(data.positions[:, 1]))
  _, rolled = jax.jit(lambda c, a: jax.lax.scan(step, c, a))(
      first, jnp.moveaxis(targets.accelerations, 1, 0))
  np.testing.assert_allclose(jnp.moveaxis(rolled, 0, 1), data.positions[:, 2:], atol=2e-4)


def test_trajectories_are_seeded_and_consistent():
  kwargs = dict(_SHAPE, mass_range=(0.5, 2.0), stiffness_range=(0.1, 0.1),
                rest_length_range=(0.2, 0.8))
  data = springs.trajectories(7, **kwargs)
  assert data.positions.shape == data.velocities.shape == (4, 101, 5, 2)
  assert data.positions.dtype == np.float32 and isinstance(data.positions, np.ndarray)
  assert data.system.springs.shape == (4, 5, 2)  # S = 5 * 4 // 4
  assert data.system.masses.shape == (4, 5) and data.system.box.shape == (4,)
  again = springs.trajectories(7, **kwargs)
  for got, want in zip(jax.tree_util.tree_leaves(again), jax.tree_util.tree_leaves(data)):
    np.testing.assert_array_equal(got, want)
  fewer = springs.trajectories(7, **dict(kwargs, num_trajectories=2))
  np.testing.assert_array_equal(fewer.positions, data.positions[:2])
  other = springs.trajectories(8, **kwargs)
  assert not np.allclose(other.positions[:, 0], data.positions[:, 0])
  # NRI's initial state: unit-speed directions scaled to `speed`, and the
  # sampled values inside their ranges.
  np.testing.assert_allclose(np.linalg.norm(data.velocities[:, 0], axis=-1), 0.5, rtol=1e-5)
  assert 0.5 <= data.system.masses.min() and data.system.masses.max() <= 2.0
  np.testing.assert_allclose(data.system.stiffness, 0.1)
  assert 0.2 <= data.system.rest_lengths.min() and data.system.rest_lengths.max() <= 0.8
  # Each trajectory is `simulate` of its own system.
  positions, velocities = springs.simulate(_system(data, 3), data.positions[3, 0],
                                           data.velocities[3, 0], dt=0.1, steps=100,
                                           substeps=10)
  np.testing.assert_allclose(positions, data.positions[3], atol=1e-5)
  np.testing.assert_allclose(velocities, data.velocities[3], atol=1e-5)
  with jax.enable_x64(True):
    data64 = springs.trajectories(7, 1, 2, 1, 0.1, dtype=np.float64)
  assert data64.positions.dtype == data64.system.masses.dtype == np.float64
  assert data64.system.springs.dtype == np.int32


def test_random_system_draws_distinct_pairs_uniformly():
  keys = jax.random.split(jax.random.key(0), 400)
  systems = jax.jit(jax.vmap(lambda k: springs.random_system(k, 5, num_springs=5)))(keys)
  pairs = np.asarray(systems.springs)  # (400, 5, 2)
  assert np.all(pairs[..., 0] < pairs[..., 1])
  codes = pairs[..., 0] * 5 + pairs[..., 1]
  assert np.all(np.diff(codes, axis=-1) > 0)  # distinct, in increasing order
  # Each of the 10 pairs is a spring with probability 5 / 10 (sd 0.025 here).
  frequency = np.array([np.mean(np.any(codes == i * 5 + j, axis=-1))
                        for i in range(5) for j in range(i + 1, 5)])
  assert np.all(np.abs(frequency - 0.5) < 0.1)
  one = springs.random_system(jax.random.key(1), 4, num_springs=6, mass_range=(1.0, 3.0))
  assert sorted(map(tuple, np.asarray(one.springs).tolist())) == [
      (0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
  assert one.masses.dtype == jnp.float32 and bool(jnp.isinf(one.box))


def test_spring_edges_point_both_ways_with_features():
  system = springs.spring_system([1.0, 1.0, 1.0, 1.0], [[0, 1], [2, 1], [3, 0]],
                                 rest_lengths=[0.5, 1.0, 1.5], stiffness=[2.0, 3.0, 4.0])
  edges = springs.spring_edges(system)
  assert edges.senders.tolist() == [0, 2, 3, 1, 1, 0]
  assert edges.receivers.tolist() == [1, 1, 0, 0, 2, 3]
  assert edges.senders.dtype == edges.receivers.dtype == jnp.int32
  np.testing.assert_array_equal(edges.features, [[0.5, 2.0], [1.0, 3.0], [1.5, 4.0]] * 2)
  # Batched systems keep their leading axes.
  batched = springs.spring_edges(_data(0).system)
  assert batched.senders.shape == (4, 10) and batched.features.shape == (4, 10, 2)
  np.testing.assert_array_equal(batched.senders[:, :5], _data(0).system.springs[..., 0])


def test_bad_arguments_are_named():
  good = springs.spring_system([1.0, 2.0], [[0, 1]])
  x, v = np.zeros((2, 2), np.float32), np.zeros((2, 2), np.float32)
  with pytest.raises(ValueError, match="masses"):
    springs.spring_system([1.0, 0.0], [[0, 1]])
  with pytest.raises(ValueError, match="masses"):
    springs.simulate(good._replace(masses=jnp.array([1.0, -1.0])), x, v, dt=0.1, steps=1)
  with pytest.raises(ValueError, match=r"springs must index particles in \[0, 2\), got 2"):
    springs.spring_system([1.0, 2.0], [[0, 2]])
  with pytest.raises(ValueError, match="springs"):
    springs.energy(x, v, good._replace(springs=jnp.array([[0, -1]], jnp.int32)))
  with pytest.raises(ValueError, match="springs must join two different particles"):
    springs.spring_system([1.0, 2.0], [[0, 1], [1, 1]])
  with pytest.raises(ValueError, match="stiffness"):
    springs.spring_system([1.0, 2.0], [[0, 1]], stiffness=-1.0)
  with pytest.raises(ValueError, match="rest_lengths"):
    springs.spring_system([1.0, 2.0], [[0, 1]], rest_lengths=[1.0, 2.0])
  for dt in (0.0, -0.1):
    with pytest.raises(ValueError, match="dt"):
      springs.simulate(good, x, v, dt=dt, steps=1)
  with pytest.raises(ValueError, match="dt"):
    springs.trajectories(0, 1, 3, 5, 0.0)
  with pytest.raises(ValueError, match="dt"):
    springs.finite_difference_targets(np.zeros((3, 2, 2), np.float32), 0.0)
  with pytest.raises(ValueError, match="dt"):
    springs.rollout_step(x, x, x, -1.0)
  with pytest.raises(ValueError, match="steps"):
    springs.simulate(good, x, v, dt=0.1, steps=0)
  with pytest.raises(ValueError, match="substeps"):
    springs.simulate(good, x, v, dt=0.1, steps=1, substeps=0)
  with pytest.raises(ValueError, match="steps"):
    springs.trajectories(0, 1, 3, 0, 0.1)
  with pytest.raises(ValueError, match="x0"):
    springs.simulate(good, np.zeros((3, 2), np.float32), v, dt=0.1, steps=1)
  with pytest.raises(ValueError, match="x0 must lie inside the box"):
    springs.simulate(springs.spring_system([1.0, 2.0], [[0, 1]], box=1.0),
                     np.array([[0.0, 0.0], [1.5, 0.0]], np.float32), v, dt=0.1, steps=1)
  with pytest.raises(ValueError, match="system must be one system"):
    springs.energy(x, v, jax.tree_util.tree_map(lambda a: a[None], good))
  with pytest.raises(ValueError, match="num_springs"):
    springs.random_system(jax.random.key(0), 4, num_springs=7)
  with pytest.raises(ValueError, match="mass_range"):
    springs.random_system(jax.random.key(0), 4, mass_range=(0.0, 1.0))
  with pytest.raises(ValueError, match="num_particles"):
    springs.trajectories(0, 1, 0, 5, 0.1)
  with pytest.raises(ValueError, match="positions"):
    springs.finite_difference_targets(np.zeros((2, 2, 2), np.float32), 0.1)
  with pytest.raises(ValueError, match="same shape"):
    springs.rollout_step(x, x[:1], x, 0.1)
  with pytest.raises(ValueError, match="x64"):
    springs.trajectories(0, 1, 3, 5, 0.1, dtype=np.float64)
