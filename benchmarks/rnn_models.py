"""One recurrent layer in seqjax, Flax and PyTorch, its training step, and the workers that time it.

The layer has H units (LSTM; GRU with the reset gate applied after the
recurrent matmul, as in PyTorch and cuDNN; tanh RNN) and runs on a batch of B
float32 sequences of length T with D features:

* ``seqjax``, ``seqjax-scan``, ``seqjax-fast``: ``seqjax.unroll`` of
  ``seqjax.cells.{lstm,gru,rnn}`` with ``implementation=`` the request's (the
  default ``auto``), ``"scan"`` (autodiff of the plain ``lax.scan`` of
  ``step``) and ``"fast"`` (the cell's whole-sequence fast path ``cell.fast``);
* ``flax``: ``flax.linen.RNN`` of ``OptimizedLSTMCell``/``GRUCell``/``SimpleCell``;
* ``torch``: ``nn.LSTM``/``nn.GRU``/``nn.RNN`` (``batch_first``), on CUDA if
  available, else on the CPU with ``threads`` intra-op threads.

A training step is forward + mean squared error to a fixed random target +
backward + Adam (lr 1e-3) after clipping the gradient's global norm at 1:
``optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-3))`` in one
``jax.jit`` with params and optimiser state donated, ``clip_grad_norm_`` +
``torch.optim.Adam`` in torch. Inference is the forward pass alone.

jax, flax, optax and torch are imported inside the workers only, so that a
torch worker never loads XLA, a JAX worker never loads torch, and the parent
process that alternates between them holds neither.
"""

from __future__ import annotations

import os
import time

import harness

GATES = {"lstm": 4, "gru": 3, "rnn": 1}
IMPLEMENTATIONS = {"seqjax": None, "seqjax-scan": "scan", "seqjax-fast": "fast"}
IMPLS = tuple(IMPLEMENTATIONS) + ("flax", "torch")
# Set to "0" (by rnn_throughput.py --torch-no-mkldnn) to turn off torch's
# mkldnn RNN primitives in the torch worker process, which inherits it.
TORCH_MKLDNN_ENV = "RNN_BENCHMARK_TORCH_MKLDNN"


def forward_flops(cell: str, batch: int, length: int, input_size: int, hidden: int) -> float:
  """FLOPs of the gate matmuls of one layer's forward pass: 2*B*T*(D+H)*G*H."""
  return 2.0 * batch * length * (input_size + hidden) * GATES[cell] * hidden


def seqjax_cell(name: str, hidden: int):
  import seqjax  # pylint: disable=import-outside-toplevel
  return getattr(seqjax.cells, name)(hidden)


def make_worker(name: str, threads: int):
  return TorchWorker(threads) if name == "torch" else JaxWorker(name)


class JaxWorker:
  """seqjax (``name`` starting with "seqjax") or flax; one configuration at a time."""

  def __init__(self, name: str):
    import jax  # pylint: disable=import-outside-toplevel
    self.name, self.jax = name, jax
    self.config, self.state = None, None

  def op_ping(self, request):
    """Imports what this worker will need (so that workers can start side by side)."""
    del request
    # pylint: disable=import-outside-toplevel,unused-import
    import optax
    if self.name == "flax":
      import flax.linen
    else:
      import seqjax
    return {}

  def op_info(self, request):
    """Versions, device, and per cell whether it has a fast path and what ``auto`` takes."""
    # pylint: disable=import-outside-toplevel
    import flax
    import optax
    jax = self.jax
    cells = {}
    for name in request.get("cells", []):
      fast = seqjax_cell(name, 8).fast
      cells[name] = {"has_fast": fast is not None,
                     "fast_backends": list(fast.backends) if fast else [],
                     "auto": "fast" if fast and jax.default_backend() in fast.backends
                             else "scan"}
    return {"backend": jax.default_backend(), "device": jax.devices()[0].device_kind,
            "versions": {"jax": jax.__version__, "flax": flax.__version__,
                         "optax": optax.__version__},
            "cells": cells}

  def op_peak(self, request):
    """GFLOP/s of an N x N @ N x N float32 matmul, the fastest of ``repeats``."""
    jax, jnp = self.jax, self.jax.numpy
    n = request["size"]
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
    b = jax.random.normal(jax.random.PRNGKey(1), (n, n), jnp.float32)
    matmul = jax.jit(jnp.matmul)
    seconds = harness.fastest_seconds(lambda: matmul(a, b), jax.block_until_ready,
                                      request.get("repeats", 5))
    return {"gflops": 2 * n ** 3 / seconds / 1e9}

  def model(self, cell: str, hidden: int, implementation, layers: int = 1):
    """``(init(key, xs) -> params, apply(params, xs) -> ys)`` of this worker's layer(s)."""
    if self.name == "flax":
      import flax.linen as nn  # pylint: disable=import-outside-toplevel
      flax_cell = {"lstm": nn.OptimizedLSTMCell, "gru": nn.GRUCell, "rnn": nn.SimpleCell}[cell]
      rnns = [nn.RNN(flax_cell(hidden)) for _ in range(layers)]
      module = rnns[0] if layers == 1 else nn.Sequential(rnns)
      # Parameters do not depend on T: initialise on one step.
      return (lambda key, xs: module.init(key, xs[:, :1])["params"],
              lambda params, xs: module.apply({"params": params}, xs))
    import seqjax  # pylint: disable=import-outside-toplevel
    implementation = implementation or IMPLEMENTATIONS[self.name] or "auto"
    one = seqjax_cell(cell, hidden)
    if layers == 1:
      return (lambda key, xs: one.init(key, xs.shape[-1]),
              lambda params, xs: seqjax.unroll(one, params, xs,
                                               implementation=implementation)[1])
    layer = seqjax.layers.stacked(seqjax.layers.recurrent(one, implementation=implementation),
                                  num_layers=layers)
    return (lambda key, xs: layer.init(key, xs.shape[-1]),
            lambda params, xs: layer.apply(params, xs)[1])

  def train_step(self, apply):
    """``(optimizer, jitted step(params, opt_state, xs, target) -> (params, opt_state, loss))``."""
    import optax  # pylint: disable=import-outside-toplevel
    jax, jnp = self.jax, self.jax.numpy
    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-3))

    def loss_fn(params, xs, target):
      return jnp.mean((apply(params, xs) - target) ** 2)

    def step(params, opt_state, xs, target):
      loss, grads = jax.value_and_grad(loss_fn)(params, xs, target)
      updates, opt_state = optimizer.update(grads, opt_state, params)
      return optax.apply_updates(params, updates), opt_state, loss

    return optimizer, jax.jit(step, donate_argnums=(0, 1))

  def setup(self, request: dict):
    """Builds and compiles one configuration (kept until the next one)."""
    jax = self.jax
    key = tuple(request.get(k) for k in ("cell", "length", "hidden", "batch", "input_size",
                                         "implementation", "layers"))
    if self.config == key:
      return self.state
    self.config, self.state = None, None  # frees the previous configuration's buffers first
    init, apply = self.model(request["cell"], request["hidden"], request.get("implementation"),
                             request.get("layers", 1))
    xs, target = (jax.device_put(a) for a in harness.inputs(
        request["batch"], request["length"], request["input_size"], request["hidden"]))
    params = init(jax.random.PRNGKey(0), xs)
    optimizer, step = self.train_step(apply)
    opt_state = optimizer.init(params)
    start = time.perf_counter()
    lowered = step.lower(params, opt_state, xs, target)
    lowered_at = time.perf_counter()
    train = lowered.compile()
    compiled_at = time.perf_counter()
    self.state = {"params": params, "opt_state": opt_state, "xs": xs, "target": target,
                  "train": train, "loss": None, "lower_s": lowered_at - start,
                  "compile_s": compiled_at - lowered_at, "apply": apply, "infer": None}
    self.config = key
    return self.state

  def op_compile(self, request):
    """Trace + lower and XLA compile seconds of a training step of ``request["layers"]``."""
    state = self.setup(request)
    _, _, loss = state["train"](state["params"], state["opt_state"], state["xs"], state["target"])
    self.config, self.state = None, None  # its params were donated
    return {"lower_s": state["lower_s"], "compile_s": state["compile_s"], "loss": float(loss)}

  def op_measure(self, request):
    """Seconds per training step and per forward pass (``request["infer"]``, default on)."""
    jax = self.jax
    state = self.setup(request)

    def train(steps):
      params, opt_state, loss = state["params"], state["opt_state"], None
      for _ in range(steps):
        params, opt_state, loss = state["train"](params, opt_state, state["xs"], state["target"])
      jax.block_until_ready((params, loss))
      state.update(params=params, opt_state=opt_state, loss=loss)

    def infer(steps):
      ys = None
      for _ in range(steps):
        ys = state["infer"](state["params"], state["xs"])
      jax.block_until_ready(ys)

    reply = {"compile_s": state["lower_s"] + state["compile_s"]}
    reply["train_s"], reply["train_steps"] = harness.time_steps(train, request["min_seconds"])
    if request.get("infer", True):
      if state["infer"] is None:
        state["infer"] = jax.jit(state["apply"]).lower(state["params"], state["xs"]).compile()
      reply["infer_s"], reply["infer_steps"] = harness.time_steps(
          infer, request["min_seconds"] / 2)
    reply["loss"] = float(state["loss"])
    return reply


class TorchWorker:
  """``torch.nn.{LSTM,GRU,RNN}``, one configuration at a time."""

  def __init__(self, threads: int):
    import torch  # pylint: disable=import-outside-toplevel
    self.torch = torch
    torch.set_num_threads(threads)
    if os.environ.get(TORCH_MKLDNN_ENV) == "0":
      torch.backends.mkldnn.enabled = False
    self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    self.config, self.state = None, None

  def _sync(self, value=None):
    if self.device.type == "cuda":
      self.torch.cuda.synchronize()
    return value

  def op_ping(self, request):
    del request
    return {}

  def op_info(self, request):
    del request
    torch = self.torch
    device = (torch.cuda.get_device_name() if self.device.type == "cuda"
              else f"cpu, {torch.get_num_threads()} threads")
    if not torch.backends.mkldnn.enabled:
      device += ", mkldnn disabled"
    return {"device": device, "versions": {"torch": torch.__version__}}

  def op_peak(self, request):
    torch = self.torch
    n = request["size"]
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=generator).to(self.device)
    b = torch.randn(n, n, generator=generator).to(self.device)
    seconds = harness.fastest_seconds(lambda: torch.mm(a, b), self._sync,
                                      request.get("repeats", 5))
    return {"gflops": 2 * n ** 3 / seconds / 1e9}

  def _setup(self, request):
    torch = self.torch
    key = tuple(request[k] for k in ("cell", "length", "hidden", "batch", "input_size"))
    if self.config == key:
      return self.state
    self.config, self.state = None, None
    torch.manual_seed(0)
    module_class = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}
    module = module_class[request["cell"]](request["input_size"], request["hidden"],
                                           batch_first=True).to(self.device)
    xs, target = (torch.from_numpy(a).to(self.device) for a in harness.inputs(
        request["batch"], request["length"], request["input_size"], request["hidden"]))
    self.state = {"module": module, "xs": xs, "target": target, "loss": None,
                  "optimizer": torch.optim.Adam(module.parameters(), lr=1e-3)}
    self.config = key
    return self.state

  def op_measure(self, request):
    torch = self.torch
    state = self._setup(request)
    module, optimizer, xs, target = (state[k] for k in ("module", "optimizer", "xs", "target"))

    def train(steps):
      for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        ys, _ = module(xs)
        loss = torch.mean((ys - target) ** 2)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
        optimizer.step()
      self._sync()
      state["loss"] = loss.detach()

    def infer(steps):
      with torch.inference_mode():
        for _ in range(steps):
          module(xs)
      self._sync()

    reply = {"compile_s": None}
    reply["train_s"], reply["train_steps"] = harness.time_steps(train, request["min_seconds"])
    if request.get("infer", True):
      reply["infer_s"], reply["infer_steps"] = harness.time_steps(
          infer, request["min_seconds"] / 2)
    reply["loss"] = float(state["loss"])
    return reply
