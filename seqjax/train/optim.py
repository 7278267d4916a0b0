"""The optimiser, built from a config: optax rule, schedule, clipping, freezing.

``make_optimizer(config.optimizer, total_steps)`` returns one optax
``GradientTransformation``::

  keep_frozen(chain(clip(clip_value),               # element-wise, if > 0
                    clip_by_global_norm(clip_global_norm),  # if > 0
                    add_decayed_weights(weight_decay),      # L2, not for adamw
                    <adam | adamw | sgd | rmsprop>(learning_rate_schedule)))

Why this order:

* Clipping acts on the raw gradients, before the optimiser, so that one
  exploding batch (the usual failure of recurrent networks, Pascanu et al.
  2013, https://arxiv.org/abs/1211.5063) cannot pollute Adam's or RMSProp's
  moment estimates for the next ~1/(1 - beta) steps, and so that the bound is
  on the gradient, as in the papers, not on an already rescaled update.
* Element-wise clipping runs first: it cuts single outlier entries down to
  ``clip_value``. Global-norm clipping after it then rescales the whole vector
  by one factor, which keeps its direction. In the other order one huge entry
  (say 1e6) would dominate the norm and shrink every other entry by the same
  factor, wiping out the useful part of the gradient. Both bounds hold at the
  end, since global-norm rescaling only ever shrinks entries.
* The L2 term of sgd/rmsprop/adam is added after clipping, so clipping bounds
  the data gradient (the one whose norm is logged) and never weakens the
  regularisation. adamw's decay is decoupled (Loshchilov & Hutter 2019,
  https://arxiv.org/abs/1711.05101): optax applies it to the update, scaled by
  the learning rate.
* ``seqjax.types.keep_frozen`` wraps everything, so parameters under a
  ``"frozen"`` key (echo-state reservoirs, fixed timescales) get zero updates,
  no weight decay, and do not count in the global norm.
"""

from __future__ import annotations

import numbers
from typing import Any, Callable, Mapping, Union

import ml_collections
import optax

from seqjax.types import keep_frozen

NAMES = ("adam", "adamw", "sgd", "rmsprop")
SCHEDULES = ("constant", "cosine", "warmup_cosine")

ConfigLike = Union[ml_collections.ConfigDict, Mapping[str, Any]]


def default_optimizer_config() -> ml_collections.ConfigDict:
  """The optimiser fields, with defaults suited to small recurrent networks.

  Fields:
    name: ``"adam"``, ``"adamw"``, ``"sgd"`` or ``"rmsprop"``.
    learning_rate: peak learning rate, > 0.
    momentum: heavy-ball momentum in [0, 1) for sgd and rmsprop; 0 means none.
      Must be 0 for adam/adamw (their first-moment decay plays that role).
    nesterov: sgd only: Nesterov's momentum (Sutskever et al. 2013) instead of
      heavy ball; needs momentum > 0.
    weight_decay: >= 0; 0 is off. Decoupled for adamw (``p -= lr * wd * p``);
      for the others ``wd * p`` is added to the clipped gradient (L2).
    schedule: ``"constant"`` (after an optional linear warmup from 0 over
      ``warmup_steps``), ``"cosine"`` (cosine decay from ``learning_rate`` to
      ``final_lr_fraction * learning_rate`` over ``total_steps``, no warmup) or
      ``"warmup_cosine"`` (linear warmup from 0 to ``learning_rate`` at
      ``warmup_steps``, then cosine decay to ``final_lr_fraction *
      learning_rate`` at ``total_steps``).
    warmup_steps: integer >= 0, at most ``total_steps`` (``"warmup_cosine"``
      needs fewer, to leave steps to decay over); must be 0 for ``"cosine"``.
    final_lr_fraction: in [0, 1], the floor of the cosine schedules as a
      fraction of ``learning_rate``; unused by ``"constant"``.
    clip_global_norm: >= 0; rescale the gradient to at most this global L2
      norm; 0 is off. The default 1.0 guards recurrent networks against
      exploding gradients (Pascanu et al. 2013).
    clip_value: >= 0; clip every gradient entry to ``[-clip_value,
      clip_value]`` (before the global-norm clip); 0 is off.
    rmsprop_style: ``"optax"`` (``optax.rmsprop``: decay 0.9, ``g /
      sqrt(nu + eps)``) or ``"pytorch"`` (``torch.optim.RMSprop``: decay
      0.99, ``g / (sqrt(nu) + eps)``). Settings published with PyTorch code
      need the latter: with small gradients the two differ by far more than
      their decay (eps = 1e-8 inside the root caps the step at ``g / 1e-4``).

  Returns:
    A ``ConfigDict`` with the fields above; use it as ``config.optimizer``.
  """
  return ml_collections.ConfigDict({
      "name": "adam",
      "learning_rate": 1e-3,
      "momentum": 0.0,
      "nesterov": False,
      "weight_decay": 0.0,
      "schedule": "constant",
      "warmup_steps": 0,
      "final_lr_fraction": 0.0,
      "clip_global_norm": 1.0,
      "clip_value": 0.0,
      "rmsprop_style": "optax",
  })


def _as_dict(config: ConfigLike) -> dict[str, Any]:
  if isinstance(config, ml_collections.ConfigDict):
    config = config.to_dict()
  if not isinstance(config, Mapping):
    raise TypeError(f"optimizer config must be an ml_collections.ConfigDict or "
                    f"a mapping, got {type(config).__name__}")
  defaults = default_optimizer_config().to_dict()
  unknown = sorted(set(config) - set(defaults))
  if unknown:
    raise ValueError(f"optimizer.{unknown[0]} is not an optimizer field "
                     f"(unknown fields: {unknown}); the fields are "
                     f"{sorted(defaults)}")
  return {**defaults, **dict(config)}


def _number(field: str, value: Any) -> float:
  if isinstance(value, bool) or not isinstance(value, numbers.Real):
    raise TypeError(f"optimizer.{field} must be a number, got {value!r}")
  if value != value:  # NaN compares unequal to itself and passes every bound.
    raise ValueError(f"optimizer.{field} must be a number, got {value}")
  return float(value)


def _non_negative(field: str, value: Any, meaning: str) -> float:
  value = _number(field, value)
  if value < 0:
    raise ValueError(f"optimizer.{field} must be >= 0 ({meaning}), got {value}")
  return value


def _integer(field: str, value: Any) -> int:
  if isinstance(value, bool) or not isinstance(value, numbers.Integral):
    raise TypeError(f"optimizer.{field} must be an integer, got {value!r}")
  return int(value)


def _choice(field: str, value: Any, choices: tuple[str, ...]) -> str:
  if value not in choices:
    raise ValueError(f"optimizer.{field} must be one of {choices}, got {value!r}")
  return value


def _validated(config: ConfigLike, total_steps: Any) -> dict[str, Any]:
  """The config as a dict of checked Python values."""
  if isinstance(total_steps, bool) or not isinstance(total_steps, numbers.Integral):
    raise TypeError(f"total_steps must be a positive integer, got {total_steps!r}")
  if total_steps <= 0:
    raise ValueError(f"total_steps must be a positive integer, got {total_steps}")
  c = _as_dict(config)
  name = _choice("name", c["name"], NAMES)
  schedule = _choice("schedule", c["schedule"], SCHEDULES)
  learning_rate = _number("learning_rate", c["learning_rate"])
  if not learning_rate > 0:
    raise ValueError(f"optimizer.learning_rate must be > 0, got {learning_rate}")
  momentum = _number("momentum", c["momentum"])
  if not 0 <= momentum < 1:
    raise ValueError(f"optimizer.momentum must be in [0, 1) (0 = no momentum), "
                     f"got {momentum}")
  if momentum and name not in ("sgd", "rmsprop"):
    raise ValueError(f"optimizer.momentum is used by sgd and rmsprop only, got "
                     f"{momentum} with optimizer.name={name!r} (set it to 0)")
  nesterov = c["nesterov"]
  if not isinstance(nesterov, bool):
    raise ValueError(f"optimizer.nesterov must be True or False, got {nesterov!r}")
  if nesterov and (name != "sgd" or not momentum):
    raise ValueError(f"optimizer.nesterov needs optimizer.name='sgd' and momentum > 0, got "
                     f"name={name!r}, momentum={momentum}")
  warmup_steps = _integer("warmup_steps", c["warmup_steps"])
  if warmup_steps < 0:
    raise ValueError(f"optimizer.warmup_steps must be >= 0, got {warmup_steps}")
  if warmup_steps > total_steps:
    raise ValueError(f"optimizer.warmup_steps must be <= total_steps "
                     f"({total_steps}), got {warmup_steps}")
  if schedule == "warmup_cosine" and warmup_steps == total_steps:
    raise ValueError(f"optimizer.warmup_steps must be < total_steps "
                     f"({total_steps}) with schedule='warmup_cosine', to leave "
                     f"steps for the decay, got {warmup_steps}")
  if schedule == "cosine" and warmup_steps:
    raise ValueError(f"optimizer.warmup_steps must be 0 with schedule='cosine', "
                     f"got {warmup_steps} (use schedule='warmup_cosine')")
  final_lr_fraction = _number("final_lr_fraction", c["final_lr_fraction"])
  if not 0 <= final_lr_fraction <= 1:
    raise ValueError(f"optimizer.final_lr_fraction must be in [0, 1], got "
                     f"{final_lr_fraction}")
  if c["rmsprop_style"] not in ("optax", "pytorch"):
    raise ValueError(f"optimizer.rmsprop_style must be 'optax' or 'pytorch', "
                     f"got {c['rmsprop_style']!r}")
  return dict(
      rmsprop_style=c["rmsprop_style"],
      name=name, schedule=schedule, learning_rate=learning_rate,
      momentum=momentum, nesterov=nesterov, warmup_steps=warmup_steps,
      final_lr_fraction=final_lr_fraction,
      weight_decay=_non_negative("weight_decay", c["weight_decay"], "0 = off"),
      clip_global_norm=_non_negative("clip_global_norm", c["clip_global_norm"],
                                     "0 = off"),
      clip_value=_non_negative("clip_value", c["clip_value"], "0 = off"))


def _schedule(c: dict[str, Any], total_steps: int) -> Union[float, optax.Schedule]:
  lr, warmup = c["learning_rate"], c["warmup_steps"]
  floor = c["final_lr_fraction"] * lr
  if c["schedule"] == "constant":
    if not warmup:
      # A plain float keeps the optimiser state free of a step count, exactly
      # as optax's own optimiser with a constant rate.
      return lr
    return optax.join_schedules(
        [optax.linear_schedule(0.0, lr, warmup), optax.constant_schedule(lr)],
        [warmup])
  if c["schedule"] == "cosine" or not warmup:
    return optax.cosine_decay_schedule(lr, total_steps,
                                       alpha=c["final_lr_fraction"])
  return optax.warmup_cosine_decay_schedule(0.0, lr, warmup, total_steps,
                                            end_value=floor)


def learning_rate_schedule(config: ConfigLike,
                           total_steps: int) -> Callable[[Any], Any]:
  """The learning rate as a function of the update count, for logging.

  Args:
    config: the optimiser config (see ``default_optimizer_config``).
    total_steps: number of updates of the run, > 0.

  Returns:
    ``schedule(count) -> learning rate`` used by ``make_optimizer(config,
    total_steps)`` for its update number ``count`` (counting from 0).
  """
  schedule = _schedule(_validated(config, total_steps), total_steps)
  if callable(schedule):
    return schedule
  return optax.constant_schedule(schedule)


def make_optimizer(config: ConfigLike,
                   total_steps: int) -> optax.GradientTransformation:
  """Builds the optax optimiser described by ``config``.

  See the module docstring for the chain and why it is in that order, and
  ``default_optimizer_config`` for the fields. Fields missing from ``config``
  take their defaults.

  Args:
    config: ``config.optimizer`` (a ``ConfigDict`` or a mapping).
    total_steps: number of updates of the run, > 0; the length of the cosine
      schedules.

  Returns:
    An ``optax.GradientTransformation`` whose updates leave every parameter
    under a ``"frozen"`` key unchanged.

  Raises:
    ValueError/TypeError naming ``optimizer.<field>`` (or ``total_steps``) for
    an unknown field, a name or schedule that does not exist, a non-positive
    learning rate, negative clipping or decay, ``warmup_steps`` beyond
    ``total_steps``, and the like.

  Example::

    config = default_optimizer_config()
    config.name, config.schedule, config.warmup_steps = "adamw", "warmup_cosine", 100
    optimizer = make_optimizer(config, total_steps=10_000)
  """
  c = _validated(config, total_steps)
  learning_rate = _schedule(c, total_steps)
  momentum = c["momentum"] or None
  if c["name"] == "adam":
    rule = optax.adam(learning_rate)
  elif c["name"] == "adamw":
    rule = optax.adamw(learning_rate, weight_decay=c["weight_decay"])
  elif c["name"] == "sgd":
    rule = optax.sgd(learning_rate, momentum=momentum, nesterov=c["nesterov"])
  else:
    if c["rmsprop_style"] == "pytorch":
      rule = optax.rmsprop(learning_rate, decay=0.99, eps=1e-8, eps_in_sqrt=False,
                           momentum=momentum)
    else:
      rule = optax.rmsprop(learning_rate, momentum=momentum)

  chain = []
  if c["clip_value"]:
    chain.append(optax.clip(c["clip_value"]))
  if c["clip_global_norm"]:
    chain.append(optax.clip_by_global_norm(c["clip_global_norm"]))
  if c["weight_decay"] and c["name"] != "adamw":
    chain.append(optax.add_decayed_weights(c["weight_decay"]))
  chain.append(rule)
  return keep_frozen(optax.chain(*chain) if len(chain) > 1 else rule)
