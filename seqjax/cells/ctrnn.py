"""Continuous-time RNN, integrated with explicit Euler steps of length ``dt``.

The ODE is the "rate" form used in computational neuroscience models of
cognitive tasks, with the nonlinearity applied to the total input current.

References:
  Funahashi & Nakamura 1993, "Approximation of dynamical systems by
  continuous time recurrent neural networks", Neural Networks 6(6).
  Beer 1995, "On the dynamics of small continuous-time recurrent neural
  networks", Adaptive Behavior 3(4).
  Song, Yang & Wang 2016, "Training excitatory-inhibitory recurrent neural
  networks for cognitive tasks", PLoS Computational Biology 12(2).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from seqjax import checks
from seqjax import init as initializers
from seqjax.cells import common
from seqjax.types import Cell

__all__ = ["ctrnn"]  # re-exported by seqjax.cells


def ctrnn(hidden_size: int,
          *,
          dt: float = 0.1,
          tau: float = 1.0,
          activation: common.ActivationLike = "tanh",
          kernel_init=initializers.glorot_uniform(),
          recurrent_init=initializers.orthogonal(),
          bias_init=initializers.zeros,
          dtype=jnp.float32) -> Cell:
  """Continuous-time RNN, one explicit Euler step of length ``dt`` per input.

  ODE and its Euler step (x_t: (*B, D), z: (*B, H); the input is held
  constant over each step)::

    tau dz/dt = -z + act(z W_h + x W_x + b)
    z(t) = z(t - dt) + (dt / tau) * (-z(t - dt) + act(z(t - dt) W_h + x_t W_x + b))
    y_t = z(t)

  With ``dt = tau`` the step is the discrete Elman RNN; with ``dt < tau`` it
  is a leaky integrator whose every unit has timescale ``tau / dt`` steps
  (``seqjax.cells.leaky.leaky`` with ``tau = tau / dt``).

  Params: ``w_x`` (D, H), ``w_h`` (H, H), ``b`` (H,). Carry: ``z`` (*B, H).

  Args:
    hidden_size: H, > 0.
    dt: Euler step, > 0 and <= ``tau``. Longer steps are refused: they
      overshoot the relaxation (``1 - dt/tau < 0``), and beyond ``2 tau`` the
      linear part of the scheme is unstable.
    tau: time constant, > 0, in the same unit as ``dt``.
    activation: nonlinearity (name or callable), tanh by default.
    kernel_init, recurrent_init, bias_init: initialisers ``(key, shape, dtype)``.
    dtype: dtype of the parameters and the carry.

  Returns:
    A ``seqjax.Cell`` with ``output_size = hidden_size``.

  Raises:
    ValueError: for dt <= 0, tau <= 0 or dt > tau.
  """
  hidden_size = checks.positive_int("hidden_size", hidden_size)
  dt = checks.positive("dt", dt)
  tau = checks.positive("tau", tau)
  if dt > tau:
    raise ValueError(f"dt must be <= tau (an Euler step longer than the time "
                     f"constant overshoots the relaxation), got dt={dt}, tau={tau}")
  act = common.activation(activation)
  rate = dt / tau

  def init(key, input_size):
    input_size = common.check_input_size(input_size)
    k_x, k_h, k_b = jax.random.split(key, 3)
    return common.dense_params((k_x, k_h, k_b), input_size, hidden_size, kernel_init,
                                recurrent_init, bias_init, dtype)

  def initial_carry(params, batch_shape=()):
    return common.zeros_carry(params, batch_shape, hidden_size, like="w_h")

  @common.checked_step(common.input_size_of("w_x"))
  def step(params, z, x):
    drive = act(z @ params["w_h"] + x @ params["w_x"] + params["b"])
    z = z + rate * (drive - z)
    return z, z

  return Cell(init, initial_carry, step, common.input_size_of("w_x"),
              hidden_size, hidden_size,
              f"ctrnn(hidden_size={hidden_size}, dt={dt}, tau={tau}, "
              f"activation={common.activation_name(activation)})")
