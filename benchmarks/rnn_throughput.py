r"""Recurrent-layer throughput: seqjax vs ``flax.linen.RNN`` vs PyTorch, on this backend.

Times one recurrent layer of H units (LSTM; GRU with the reset gate applied
after the recurrent matmul, as in PyTorch and cuDNN; tanh RNN) on a batch of B
float32 sequences of length T with D input features, in three implementations:

* ``seqjax``: ``seqjax.unroll`` of ``seqjax.cells.{lstm,gru,rnn}`` with
  ``implementation=--seqjax-implementation`` (default ``auto``); for a cell
  with a whole-sequence fast path (``cell.sequence``) also ``seqjax-scan``,
  the plain ``lax.scan`` of ``step``, so the two can be compared; for a cell
  with a oneDNN kernel (all three) also ``seqjax-onednn``
  (``implementation="onednn"``: oneDNN's RNN primitives through XLA FFI, the
  primitives PyTorch's CPU RNNs run) when the CPU backend can build it;
* ``flax``: ``flax.linen.RNN`` of ``OptimizedLSTMCell``/``GRUCell``/``SimpleCell``;
* ``torch``: ``nn.LSTM``/``nn.GRU``/``nn.RNN`` (``batch_first``), on CUDA if
  available, else on the CPU with ``--threads`` intra-op threads (default:
  every core this process may use). Skipped, with a line saying so, if torch
  is not installed (it is a benchmark-only dependency). On the CPU these are
  oneDNN's RNN primitives; ``--torch-no-mkldnn`` turns oneDNN off, to see
  what the primitive is worth.

A training step is forward + mean squared error to a fixed random target +
backward + Adam (lr 1e-3) after clipping the gradient's global norm at 1:
``optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-3))`` in one
``jax.jit`` with params and optimiser state donated, ``clip_grad_norm_`` +
``torch.optim.Adam`` in torch. Inference is the forward pass alone. Each
implementation runs in its own worker process (this script re-invoked with
``--worker NAME``, answering JSON lines on stdout) that builds and compiles a
configuration once; the repeats then alternate between the workers (seqjax,
flax, torch, seqjax, ...) so that drift in the machine's load hits all of them
alike. A repeat runs one untimed step, then 1, 2, 4, ... steps back to back
until one such run lasts ``--min-seconds`` (half that for inference); tokens/s
= B*T / seconds per step, median over repeats. The JAX compile time is that of
``jax.jit(train_step).lower(...).compile()``, tracing included.

FLOPs count the gate matmuls only: forward 2*B*T*(D+H)*G*H with G = 4 (LSTM),
3 (GRU), 1 (RNN); a training step ~3x forward. They are set against the float32
matmul peak measured in each framework (N x N @ N x N, N = 2048, the fastest of
5), which is below the hardware's peak: a share above 100% is possible.

On a CPU, torch's OpenMP threads slow down many times over when another process
takes one of the cores (its repeats then disagree, and the table says so): time
on an otherwise idle machine, or compare with ``--threads 1``.

Optional sections (``--sections``, or the ``--memory``/``--linear``/``--compile``
flags; each variant in a fresh process):

* ``memory``: ``value_and_grad`` of a loss over ``unroll`` of a 1-layer seqjax
  LSTM (H=256, B=16, D=32, T=``--memory-length``), with and without
  ``remat``: XLA's memory analysis of the compiled step (arguments + outputs
  + temporaries - aliased; on the CPU ``peak_memory_in_bytes`` counts only the
  arguments and outputs), and, where that prediction fits in
  ``--memory-run-fraction`` of the available memory, the process's peak RSS
  (or the device's peak bytes in use) and wall time of one step.
* ``linear``: ``linear_recurrence`` by ``lax.scan`` vs ``lax.associative_scan``
  (as in ``benchmarks/linear_scan.py``), forward and gradient.
* ``compile``: compile time of a 2-layer LSTM training step (seqjax
  ``stacked``; two ``flax.linen.RNN`` layers) at H=256, T=100.

  python benchmarks/rnn_throughput.py                    # the throughput table
  python benchmarks/rnn_throughput.py --cells lstm --shapes 100x256 --json /tmp/lstm.json
  python benchmarks/rnn_throughput.py --sections memory,linear,compile
  python benchmarks/rnn_throughput.py --quick            # smoke run, every section tiny
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

# jax, flax, optax and torch are imported inside the workers only, so that the
# torch worker never loads XLA, the JAX workers never load torch, and the
# parent process that alternates between them holds neither.

GATES = {"lstm": 4, "gru": 3, "rnn": 1}
SECTIONS = ("throughput", "memory", "linear", "compile")
# Repeats whose slowest and fastest differ by more than this get a note.
SPREAD_WARNING = 1.5
IMPLS = ("seqjax", "seqjax-scan", "seqjax-fast", "seqjax-onednn", "flax", "torch")

DEFAULTS = dict(shapes="100x256,1000x256,100x1024", batch=64, input_size=32, repeats=3,
                min_seconds=0.5, peak_size=2048, memory_length=100_000, memory_batch=16,
                memory_hidden=256, linear_lengths="1000,10000,100000", linear_batch=16,
                linear_size=128, compile_shape="100x256")
QUICK = dict(shapes="8x16", batch=4, input_size=4, repeats=1, min_seconds=0.02, peak_size=256,
             memory_length=200, memory_batch=4, memory_hidden=16, linear_lengths="100,1000",
             linear_batch=4, linear_size=8, compile_shape="8x16")


def forward_flops(cell: str, batch: int, length: int, input_size: int, hidden: int) -> float:
  """FLOPs of the gate matmuls of one layer's forward pass over a batch."""
  return 2.0 * batch * length * (input_size + hidden) * GATES[cell] * hidden


def parse_shapes(text: str) -> list[tuple[int, int]]:
  """``"100x256,1000x256"`` -> ``[(100, 256), (1000, 256)]`` as (T, H) pairs."""
  shapes = []
  for item in text.split(","):
    length, _, hidden = item.strip().partition("x")
    if not (length.isdigit() and hidden.isdigit()) or int(length) < 1 or int(hidden) < 1:
      raise argparse.ArgumentTypeError(f"a shape is TxH with positive integers, got {item!r}")
    shapes.append((int(length), int(hidden)))
  return shapes


def torch_available() -> bool:
  return importlib.util.find_spec("torch") is not None


def _usable_cores() -> int:
  if hasattr(os, "sched_getaffinity"):
    return len(os.sched_getaffinity(0))
  return os.cpu_count() or 1


def _time_steps(run, min_seconds: float) -> tuple[float, int]:
  """Seconds per step of ``run(n)`` (n steps, synchronised at the end).

  One untimed step first, then ``run(n)`` for n = 1, 2, 4, ... until a call
  lasts ``min_seconds``; that call's steps run back to back, so asynchronous
  dispatch overlaps them as in a training loop.

  Returns:
    ``(seconds per step, n)`` of the last call.
  """
  run(1)
  steps = 1
  while True:
    start = time.perf_counter()
    run(steps)
    elapsed = time.perf_counter() - start
    if elapsed >= min_seconds:
      return elapsed / steps, steps
    steps *= 2


def _seconds(fn, *args, repeats: int, best: bool = False) -> float:
  """Median (or, with ``best``, fastest) seconds of ``fn(*args)`` after a warm-up call."""
  import jax  # pylint: disable=import-outside-toplevel
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return min(times) if best else statistics.median(times)


def _peak_rss_bytes() -> int:
  rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  return rss if sys.platform == "darwin" else rss * 1024  # KiB on Linux


def _available_host_bytes() -> int:
  try:
    with open("/proc/meminfo") as f:
      for line in f:
        if line.startswith("MemAvailable:"):
          return int(line.split()[1]) * 1024
  except OSError:
    pass
  return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def _inputs(batch, length, input_size, hidden):
  """The same inputs and target for every implementation."""
  rng = np.random.default_rng(0)
  xs = rng.normal(size=(batch, length, input_size)).astype(np.float32)
  target = rng.normal(size=(batch, length, hidden)).astype(np.float32)
  return xs, target


# ----------------------------------------------------------------------------
# Workers: JAX (seqjax and flax) and torch. Each answers requests (dicts) with
# dicts; ``_serve`` runs one behind a JSON-lines pipe in its own process.
# ----------------------------------------------------------------------------


class JaxWorker:
  """seqjax (``name`` starting with "seqjax") or flax, one configuration at a time."""

  def __init__(self, name: str):
    import jax  # pylint: disable=import-outside-toplevel
    self.name = name
    self.jax = jax
    self.config = None

  def handle(self, request: dict) -> dict:
    return getattr(self, "op_" + request["op"])(request)

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
    import flax  # pylint: disable=import-outside-toplevel
    import optax  # pylint: disable=import-outside-toplevel
    jax = self.jax
    cells = {}
    for name in request.get("cells", []):
      cell = _seqjax_cell(name, 8)
      fast = cell.sequence is not None and jax.default_backend() in cell.fast_on
      cells[name] = {"has_sequence": cell.sequence is not None,
                     "has_onednn": cell.onednn is not None,
                     "auto": "fast" if fast else "scan"}
    onednn = (False, "the oneDNN kernel runs on the CPU backend only")
    if jax.default_backend() == "cpu":
      from seqjax._native import onednn as kernel  # pylint: disable=import-outside-toplevel
      onednn = kernel.availability()
    return {"backend": jax.default_backend(), "device": jax.devices()[0].device_kind,
            "onednn": {"available": onednn[0], "detail": onednn[1]},
            "versions": {"jax": jax.__version__, "flax": flax.__version__,
                         "optax": optax.__version__},
            "cells": cells}

  def op_peak(self, request):
    jax, jnp = self.jax, self.jax.numpy
    n = request["size"]
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
    b = jax.random.normal(jax.random.PRNGKey(1), (n, n), jnp.float32)
    seconds = _seconds(jax.jit(jnp.matmul), a, b, repeats=request.get("repeats", 5), best=True)
    return {"gflops": 2 * n ** 3 / seconds / 1e9}

  def _model(self, cell, hidden, implementation, layers=1):
    """``(init(key, xs), apply(params, xs) -> ys)`` of this worker's implementation."""
    if self.name == "flax":
      import flax.linen as nn  # pylint: disable=import-outside-toplevel
      flax_cell = {"lstm": nn.OptimizedLSTMCell, "gru": nn.GRUCell, "rnn": nn.SimpleCell}[cell]
      rnns = [nn.RNN(flax_cell(hidden)) for _ in range(layers)]
      module = rnns[0] if layers == 1 else nn.Sequential(rnns)
      # Parameters do not depend on T: initialise on one step.
      return (lambda key, xs: module.init(key, xs[:, :1])["params"],
              lambda params, xs: module.apply({"params": params}, xs))
    from seqjax import unroll  # pylint: disable=import-outside-toplevel
    seqjax_cell = _seqjax_cell(cell, hidden)
    if layers == 1:
      return (lambda key, xs: seqjax_cell.init(key, xs.shape[-1]),
              lambda params, xs: unroll(seqjax_cell, params, xs,
                                        implementation=implementation)[1])
    from seqjax import layers as layers_lib  # pylint: disable=import-outside-toplevel
    layer = layers_lib.stacked(layers_lib.recurrent(seqjax_cell, implementation=implementation),
                               num_layers=layers)
    return (lambda key, xs: layer.init(key, xs.shape[-1]),
            lambda params, xs: layer.apply(params, xs)[1])

  def _train_step(self, apply):
    import optax  # pylint: disable=import-outside-toplevel
    jax, jnp = self.jax, self.jax.numpy
    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-3))

    def loss_fn(params, xs, target):
      return jnp.mean((apply(params, xs) - target) ** 2)

    def train_step(params, opt_state, xs, target):
      loss, grads = jax.value_and_grad(loss_fn)(params, xs, target)
      updates, opt_state = optimizer.update(grads, opt_state, params)
      return optax.apply_updates(params, updates), opt_state, loss

    return optimizer, jax.jit(train_step, donate_argnums=(0, 1))

  def _setup(self, request):
    jax = self.jax
    key = tuple(request[k] for k in ("cell", "length", "hidden", "batch", "input_size",
                                     "implementation"))
    if self.config == key:
      return None
    self.config = None
    self.state = None  # frees the previous configuration's buffers first
    init, apply = self._model(request["cell"], request["hidden"], request["implementation"])
    xs, target = (jax.device_put(a) for a in _inputs(
        request["batch"], request["length"], request["input_size"], request["hidden"]))
    params = init(jax.random.PRNGKey(0), xs)
    optimizer, train_step = self._train_step(apply)
    opt_state = optimizer.init(params)
    start = time.perf_counter()
    train = train_step.lower(params, opt_state, xs, target).compile()
    compile_s = time.perf_counter() - start
    infer = jax.jit(apply).lower(params, xs).compile()
    self.state = {"params": params, "opt_state": opt_state, "xs": xs, "target": target,
                  "train": train, "infer": infer, "loss": None}
    self.config = key
    return compile_s

  def op_measure(self, request):
    jax = self.jax
    compile_s = self._setup(request)
    state = self.state

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

    train_s, train_steps = _time_steps(train, request["min_seconds"])
    infer_s, infer_steps = _time_steps(infer, request["min_seconds"] / 2)
    return {"train_s": train_s, "infer_s": infer_s, "train_steps": train_steps,
            "infer_steps": infer_steps, "compile_s": compile_s, "loss": float(state["loss"])}

  def op_compile(self, request):
    """Trace + lower and XLA compile times of a multi-layer training step."""
    jax = self.jax
    xs, target = (jax.device_put(a) for a in _inputs(
        request["batch"], request["length"], request["input_size"], request["hidden"]))
    init, apply = self._model(request["cell"], request["hidden"], request["implementation"],
                              layers=request["layers"])
    params = init(jax.random.PRNGKey(0), xs)
    optimizer, train_step = self._train_step(apply)
    opt_state = optimizer.init(params)
    start = time.perf_counter()
    lowered = train_step.lower(params, opt_state, xs, target)
    lowered_at = time.perf_counter()
    compiled = lowered.compile()
    compiled_at = time.perf_counter()
    _, _, loss = compiled(params, opt_state, xs, target)
    return {"lower_s": lowered_at - start, "compile_s": compiled_at - lowered_at,
            "loss": float(loss)}

  def op_memory(self, request):
    """Memory analysis (and, if it fits, one run) of a long LSTM gradient step."""
    from seqjax import unroll  # pylint: disable=import-outside-toplevel
    jax, jnp = self.jax, self.jax.numpy
    cell = _seqjax_cell("lstm", request["hidden"])
    params = cell.init(jax.random.PRNGKey(0), request["input_size"])
    xs, _ = _inputs(request["batch"], request["length"], request["input_size"], 1)
    time_major = request.get("time_major", False)
    xs = jax.device_put(np.ascontiguousarray(np.swapaxes(xs, 0, 1)) if time_major else xs)

    def loss_fn(params, xs):
      _, ys = unroll(cell, params, xs, remat=request["remat"], time_major=time_major,
                     implementation=request["implementation"])
      return jnp.mean(ys ** 2)

    start = time.perf_counter()
    compiled = jax.jit(jax.value_and_grad(loss_fn)).lower(params, xs).compile()
    result = {"compile_s": time.perf_counter() - start}
    stats = compiled.memory_analysis()
    fields = ("argument_size_in_bytes", "output_size_in_bytes", "alias_size_in_bytes",
              "temp_size_in_bytes", "generated_code_size_in_bytes", "peak_memory_in_bytes")
    result["analysis"] = ({name: int(getattr(stats, name)) for name in fields
                           if hasattr(stats, name)} if stats is not None else {})
    analysis = result["analysis"]
    if analysis:
      result["predicted_bytes"] = (analysis.get("argument_size_in_bytes", 0)
                                   + analysis.get("output_size_in_bytes", 0)
                                   + analysis.get("temp_size_in_bytes", 0)
                                   - analysis.get("alias_size_in_bytes", 0))
    device = jax.devices()[0]
    on_host = jax.default_backend() == "cpu"
    device_stats = None if on_host else (device.memory_stats() or None)
    if on_host or not device_stats:
      available = _available_host_bytes()
    else:
      available = device_stats.get("bytes_limit", 0) - device_stats.get("bytes_in_use", 0)
    result["available_bytes"] = available
    predicted = result.get("predicted_bytes")
    result["ran"] = bool(predicted is not None
                         and predicted <= request["run_fraction"] * available)
    if result["ran"]:
      result["rss_before_bytes"] = _peak_rss_bytes()
      start = time.perf_counter()
      loss, _ = jax.block_until_ready(compiled(params, xs))
      result["step_s"] = time.perf_counter() - start
      result["loss"] = float(loss)
      result["peak_rss_bytes"] = _peak_rss_bytes()
      if not on_host and device_stats:
        result["device_peak_bytes"] = (device.memory_stats() or {}).get("peak_bytes_in_use")
    return result

  def op_linear(self, request):
    """``linear_recurrence`` forward and gradient, sequential vs associative."""
    from seqjax.cells.linear import linear_recurrence  # pylint: disable=import-outside-toplevel
    jax, jnp = self.jax, self.jax.numpy
    rng = np.random.default_rng(0)
    rows = []
    for length in request["lengths"]:
      shape = (length, request["batch"], request["size"])
      a = jnp.asarray(rng.uniform(0.5, 0.99, shape), jnp.float32)
      b = jnp.asarray(rng.normal(size=shape), jnp.float32)
      row = {"length": length}
      for impl in ("sequential", "associative"):
        forward = jax.jit(lambda a, b, impl=impl: linear_recurrence(a, b, implementation=impl))
        grad = jax.jit(jax.grad(
            lambda a, b, impl=impl: jnp.sum(linear_recurrence(a, b, implementation=impl)),
            argnums=(0, 1)))
        row[impl] = {"forward_s": _seconds(forward, a, b, repeats=request["repeats"]),
                     "grad_s": _seconds(grad, a, b, repeats=request["repeats"])}
      rows.append(row)
    return {"rows": rows}


def _seqjax_cell(name: str, hidden: int):
  # pylint: disable=import-outside-toplevel
  from seqjax.cells.gru import gru
  from seqjax.cells.lstm import lstm
  from seqjax.cells.rnn import rnn
  return {"lstm": lstm, "gru": gru, "rnn": rnn}[name](hidden)


# Set to "0" by --torch-no-mkldnn; read by the torch worker process.
_TORCH_MKLDNN_ENV = "RNN_THROUGHPUT_TORCH_MKLDNN"


class TorchWorker:
  """``torch.nn.{LSTM,GRU,RNN}``, one configuration at a time."""

  def __init__(self, threads: int):
    import torch  # pylint: disable=import-outside-toplevel
    self.torch = torch
    torch.set_num_threads(threads)
    if os.environ.get(_TORCH_MKLDNN_ENV) == "0":
      torch.backends.mkldnn.enabled = False
    self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    self.config = None

  def handle(self, request: dict) -> dict:
    return getattr(self, "op_" + request["op"])(request)

  def _sync(self):
    if self.device.type == "cuda":
      self.torch.cuda.synchronize()

  def op_ping(self, request):
    del request
    return {}

  def op_info(self, request):
    del request
    torch = self.torch
    device = (torch.cuda.get_device_name() if self.device.type == "cuda"
              else f"cpu, {torch.get_num_threads()} threads")
    if not torch.backends.mkldnn.enabled:
      device += ", oneDNN (mkldnn) disabled"
    return {"device": device, "versions": {"torch": torch.__version__}}

  def op_peak(self, request):
    torch = self.torch
    n = request["size"]
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=generator).to(self.device)
    b = torch.randn(n, n, generator=generator).to(self.device)
    torch.mm(a, b)
    self._sync()
    times = []
    for _ in range(request.get("repeats", 5)):
      start = time.perf_counter()
      torch.mm(a, b)
      self._sync()
      times.append(time.perf_counter() - start)
    return {"gflops": 2 * n ** 3 / min(times) / 1e9}

  def _setup(self, request):
    torch = self.torch
    key = tuple(request[k] for k in ("cell", "length", "hidden", "batch", "input_size"))
    if self.config == key:
      return
    self.config, self.state = None, None
    torch.manual_seed(0)
    module_class = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}
    module = module_class[request["cell"]](request["input_size"], request["hidden"],
                                           batch_first=True).to(self.device)
    xs, target = (torch.from_numpy(a).to(self.device) for a in _inputs(
        request["batch"], request["length"], request["input_size"], request["hidden"]))
    self.state = {"module": module, "xs": xs, "target": target, "loss": None,
                  "optimizer": torch.optim.Adam(module.parameters(), lr=1e-3)}
    self.config = key

  def op_measure(self, request):
    torch = self.torch
    self._setup(request)
    state = self.state
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

    train_s, train_steps = _time_steps(train, request["min_seconds"])
    infer_s, infer_steps = _time_steps(infer, request["min_seconds"] / 2)
    return {"train_s": train_s, "infer_s": infer_s, "train_steps": train_steps,
            "infer_steps": infer_steps, "compile_s": None, "loss": float(state["loss"])}


def make_worker(name: str, threads: int):
  return TorchWorker(threads) if name == "torch" else JaxWorker(name)


def _serve(name: str, threads: int) -> None:
  """Worker process: one JSON request per line on stdin, one JSON reply per line on stdout."""
  replies = os.fdopen(os.dup(1), "w")
  os.dup2(2, 1)  # anything else printed to stdout (library warnings) goes to stderr
  worker = make_worker(name, threads)
  for line in sys.stdin:
    request = json.loads(line)
    if request["op"] == "quit":
      break
    try:
      reply = worker.handle(request)
    except Exception as error:  # pylint: disable=broad-except
      reply = {"error": f"{type(error).__name__}: {error}"}
    replies.write(json.dumps(reply) + "\n")
    replies.flush()


class _Subprocess:
  """A worker in its own process (the script re-invoked with ``--worker``)."""

  def __init__(self, name: str, threads: int):
    self.name = name
    env = dict(os.environ)
    # Several JAX workers share one accelerator: allocate on demand.
    env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    self.process = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--worker", name, "--threads", str(threads)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)

  def request(self, **request) -> dict:
    self.process.stdin.write(json.dumps(request) + "\n")
    self.process.stdin.flush()
    line = self.process.stdout.readline()
    if not line:
      raise RuntimeError(f"worker {self.name} exited with code {self.process.wait()}")
    return json.loads(line)

  def close(self) -> None:
    if self.process.poll() is None:
      try:
        self.process.stdin.write(json.dumps({"op": "quit"}) + "\n")
        self.process.stdin.close()
      except BrokenPipeError:
        pass
    self.process.wait()


class _InProcess:
  """A worker in this process (``--in-process``: quicker, for tests and debugging)."""

  def __init__(self, name: str, threads: int):
    self.name = name
    self.worker = make_worker(name, threads)

  def request(self, **request) -> dict:
    try:
      return self.worker.handle(request)
    except Exception as error:  # pylint: disable=broad-except
      return {"error": f"{type(error).__name__}: {error}"}

  def close(self) -> None:
    pass


class _Pool:
  """Workers by name, started on first use; ``fresh`` ones serve a single request."""

  def __init__(self, args):
    self.threads = args.threads
    self.kind = _InProcess if args.in_process else _Subprocess
    self.workers = {}

  def request(self, name: str, **request) -> dict:
    if name not in self.workers:
      self.workers[name] = self.kind(_worker_name(name), self.threads)
    return self.workers[name].request(**request)

  def start(self, names) -> None:
    """Starts the workers ``names`` side by side and waits until each has its imports."""
    started = [name for name in dict.fromkeys(names) if name not in self.workers]
    for name in started:
      self.workers[name] = self.kind(_worker_name(name), self.threads)
    for name in started:
      reply = self.workers[name].request(op="ping")
      if "error" in reply:
        raise RuntimeError(f"worker {name}: {reply['error']}")

  def fresh(self, name: str, **request) -> dict:
    worker = self.kind(_worker_name(name), self.threads)
    try:
      return worker.request(**request)
    finally:
      worker.close()

  def close(self) -> None:
    for worker in self.workers.values():
      worker.close()
    self.workers = {}


def _worker_name(impl: str) -> str:
  return "torch" if impl == "torch" else ("flax" if impl == "flax" else "seqjax")


def _implementation(impl: str, args) -> str:
  """The ``unroll(implementation=...)`` of a seqjax row."""
  return {"seqjax": args.seqjax_implementation, "seqjax-scan": "scan",
          "seqjax-fast": "fast", "seqjax-onednn": "onednn"}.get(impl, "")


# ----------------------------------------------------------------------------
# Sections.
# ----------------------------------------------------------------------------


def _log(message: str) -> None:
  print(message, file=sys.stderr, flush=True)


def _fmt_rate(value) -> str:
  return "—" if value is None else f"{value:,.0f}"


def _fmt_ratio(num, den) -> str:
  return "—" if num is None or not den else f"{num / den:.2f}"


def _fmt_bytes(value) -> str:
  return "—" if value is None else f"{value / 2 ** 20:,.0f} MiB"


def _impls_for(cell: str, args, info: dict) -> list[str]:
  """``--impls``, with ``seqjax-scan`` after ``seqjax`` where the cell has a fast path
  and ``seqjax-onednn`` where it has a oneDNN kernel that builds here."""
  impls = list(args.impls)
  features = info["seqjax"]["cells"].get(cell, {})
  if ("seqjax" in impls and features.get("has_sequence")
      and "seqjax-scan" not in impls and args.seqjax_implementation != "scan"):
    impls.insert(impls.index("seqjax") + 1, "seqjax-scan")
  if ("seqjax" in impls and features.get("has_onednn") and info["seqjax"]["onednn"]["available"]
      and "seqjax-onednn" not in impls and args.seqjax_implementation != "onednn"):
    after = "seqjax-scan" if "seqjax-scan" in impls else "seqjax"
    impls.insert(impls.index(after) + 1, "seqjax-onednn")
  return impls


def throughput(args, pool: _Pool, info: dict) -> list[dict]:
  """Training and inference tokens/s per (cell, shape, implementation)."""
  rows = []
  for cell in args.cells:
    impls = _impls_for(cell, args, info)
    for length, hidden in args.shapes:
      config = dict(cell=cell, length=length, hidden=hidden, batch=args.batch,
                    input_size=args.input_size, min_seconds=args.min_seconds)
      results = {impl: {"cell": cell, "length": length, "hidden": hidden, "batch": args.batch,
                        "input_size": args.input_size, "impl": impl,
                        "implementation": _implementation(impl, args),
                        "train_s": [], "infer_s": [], "compile_s": None, "loss": None,
                        "error": None} for impl in impls}
      for repeat in range(args.repeats):
        for impl in impls:  # alternate: one repeat of each implementation in turn
          result = results[impl]
          if result["error"]:
            continue
          reply = pool.request(impl, op="measure", implementation=result["implementation"],
                               **config)
          if "error" in reply:
            result["error"] = reply["error"]
            _log(f"[throughput] {cell} T={length} H={hidden} {impl}: {reply['error']}")
            continue
          result["train_s"].append(reply["train_s"])
          result["infer_s"].append(reply["infer_s"])
          if reply["compile_s"] is not None:
            result["compile_s"] = reply["compile_s"]
          result["loss"] = reply["loss"]
          tokens = args.batch * length
          _log(f"[throughput] {cell} T={length} H={hidden} repeat {repeat + 1}/{args.repeats} "
               f"{impl}: train {tokens / reply['train_s']:,.0f} tok/s "
               f"({reply['train_steps']} steps), infer {tokens / reply['infer_s']:,.0f} tok/s "
               f"({reply['infer_steps']} steps)")
      flops = forward_flops(cell, args.batch, length, args.input_size, hidden)
      for impl in impls:
        result = results[impl]
        tokens = args.batch * length
        for kind in ("train", "infer"):
          times = result[kind + "_s"]
          seconds = statistics.median(times) if times else None
          result[kind + "_tokens_per_s"] = tokens / seconds if seconds else None
          work = flops * (3 if kind == "train" else 1)
          result[kind + "_gflops"] = work / seconds / 1e9 if seconds else None
        rows.append(result)
  return rows


def throughput_table(rows: list[dict], info: dict) -> str:
  """The markdown table of ``throughput``'s rows."""
  peaks = {name: info[name]["peak_gflops"] for name in ("seqjax", "torch")
           if name in info and info[name].get("peak_gflops")}

  def of_peak(gflops):
    if gflops is None:
      return "—"
    shares = [f"{100 * gflops / peak:.0f}% {'JAX' if name == 'seqjax' else 'torch'}"
              for name, peak in peaks.items()]
    return f"{gflops:.1f} ({', '.join(shares)})" if shares else f"{gflops:.1f}"

  lines = ["| cell | T | H | impl | train tok/s | infer tok/s | train ÷ torch | infer ÷ torch "
           "| train ÷ flax | infer ÷ flax | train GFLOP/s (% of peak) | infer GFLOP/s (% of peak) "
           "| compile s |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
  by_config = {}
  for row in rows:
    by_config.setdefault((row["cell"], row["length"], row["hidden"]), {})[row["impl"]] = row
  for (cell, length, hidden), impls in by_config.items():
    torch_row, flax_row = impls.get("torch", {}), impls.get("flax", {})
    for impl, row in impls.items():
      label = impl
      if impl == "seqjax" and row["implementation"] == "auto":
        auto = info["seqjax"]["cells"].get(cell, {}).get("auto")
        label = f"seqjax (auto: {auto})"
      elif impl == "seqjax":
        label = f"seqjax ({row['implementation']})"
      if row["error"] and not row["train_s"]:
        lines.append(f"| {cell} | {length} | {hidden} | {label} | error: {row['error']} "
                     "| | | | | | | | |")
        continue
      train, infer = row["train_tokens_per_s"], row["infer_tokens_per_s"]
      compile_s = "—" if row["compile_s"] is None else f"{row['compile_s']:.2f}"
      lines.append(
          f"| {cell} | {length} | {hidden} | {label} | {_fmt_rate(train)} | {_fmt_rate(infer)} "
          f"| {_fmt_ratio(train, torch_row.get('train_tokens_per_s'))} "
          f"| {_fmt_ratio(infer, torch_row.get('infer_tokens_per_s'))} "
          f"| {_fmt_ratio(train, flax_row.get('train_tokens_per_s'))} "
          f"| {_fmt_ratio(infer, flax_row.get('infer_tokens_per_s'))} "
          f"| {of_peak(row['train_gflops'])} | {of_peak(row['infer_gflops'])} | {compile_s} |")
  for row in rows:
    for kind in ("train", "infer"):
      times = row[kind + "_s"]
      if len(times) > 1 and max(times) > SPREAD_WARNING * min(times):
        lines.append(f"note: {row['impl']} {row['cell']} T={row['length']} H={row['hidden']} "
                     f"{kind}: repeats differ {max(times) / min(times):.1f}x (the machine's "
                     "load changed? see --json for every repeat)")
  return "\n".join(lines)


def memory(args, pool: _Pool) -> list[dict]:
  """Remat vs no remat on a long sequence, each variant in a fresh process."""
  rows = []
  # Batch-major (B, T, D) inputs cost two transposed copies of ys (and of its
  # gradient) on top of the time-major layout unroll works in.
  for time_major in (False, True):
    for remat in (True, False):
      reply = pool.fresh("seqjax", op="memory", remat=remat, length=args.memory_length,
                         batch=args.memory_batch, hidden=args.memory_hidden,
                         input_size=args.input_size, implementation=args.memory_implementation,
                         run_fraction=args.memory_run_fraction, time_major=time_major)
      reply["remat"] = remat
      reply["time_major"] = time_major
      _log(f"[memory] time_major={time_major} remat={remat}: {reply}")
      rows.append(reply)
  return rows


def _layout(row: dict) -> str:
  return "time-major (T, B, D)" if row.get("time_major") else "batch-major (B, T, D)"


def memory_table(rows: list[dict], args) -> str:
  lines = [f"1-layer seqjax LSTM value_and_grad, H={args.memory_hidden}, B={args.memory_batch}, "
           f"D={args.input_size}, T={args.memory_length}, "
           f"implementation={args.memory_implementation}",
           "| layout | remat | predicted (args + out + temp - alias) | temp | arguments | outputs "
           "| XLA peak_memory_in_bytes | ran | peak RSS (increase in step) | step s |",
           "|---|---|---|---|---|---|---|---|---|---|"]
  for row in rows:
    if "error" in row:
      lines.append(f"| {_layout(row)} | {row['remat']} | error: {row['error']} | | | | | | | |")
      continue
    analysis = row.get("analysis", {})
    if row["ran"]:
      peak = row.get("device_peak_bytes") or row["peak_rss_bytes"]
      rss = (f"{_fmt_bytes(peak)} ({_fmt_bytes(row['peak_rss_bytes'] - row['rss_before_bytes'])})"
             if not row.get("device_peak_bytes") else f"device {_fmt_bytes(peak)}")
      ran, step = "yes", f"{row['step_s']:.1f}"
    else:
      rss, step = "—", "—"
      ran = ("no (analysis only)" if args.memory_run_fraction <= 0 else
             f"no (> {args.memory_run_fraction:.0%} of "
             f"{_fmt_bytes(row['available_bytes'])} free)")
    lines.append(
        f"| {_layout(row)} | {row['remat']} | {_fmt_bytes(row.get('predicted_bytes'))} "
        f"| {_fmt_bytes(analysis.get('temp_size_in_bytes'))} "
        f"| {_fmt_bytes(analysis.get('argument_size_in_bytes'))} "
        f"| {_fmt_bytes(analysis.get('output_size_in_bytes'))} "
        f"| {_fmt_bytes(analysis.get('peak_memory_in_bytes'))} | {ran} | {rss} | {step} |")
  return "\n".join(lines)


def linear(args, pool: _Pool) -> list[dict]:
  reply = pool.fresh("seqjax", op="linear", lengths=args.linear_lengths,
                     batch=args.linear_batch, size=args.linear_size, repeats=args.repeats)
  if "error" in reply:
    _log(f"[linear] {reply['error']}")
    return []
  return reply["rows"]


def linear_table(rows: list[dict], args) -> str:
  lines = [f"linear_recurrence float32, B={args.linear_batch}, N={args.linear_size}, "
           f"median of {args.repeats}",
           "| T | forward ms, sequential / associative | gradient ms, sequential / associative "
           "| faster forward | faster gradient |",
           "|---|---|---|---|---|"]
  for row in rows:
    seq, assoc = row["sequential"], row["associative"]
    cells = []
    for key in ("forward_s", "grad_s"):
      cells.append(f"{seq[key] * 1e3:.2f} / {assoc[key] * 1e3:.2f} "
                   f"({assoc[key] / seq[key]:.2f}x)")
    faster = ["sequential" if seq[key] <= assoc[key] else "associative"
              for key in ("forward_s", "grad_s")]
    lines.append(f"| {row['length']} | {cells[0]} | {cells[1]} | {faster[0]} | {faster[1]} |")
  return "\n".join(lines)


def compile_times(args, pool: _Pool, info: dict) -> list[dict]:
  """Compile time of a 2-layer LSTM training step, each implementation in a fresh process."""
  (length, hidden), = parse_shapes(args.compile_shape)
  impls = [impl for impl in _impls_for("lstm", args, info) if impl != "torch"]
  rows = []
  for impl in impls:
    reply = pool.fresh(impl, op="compile", cell="lstm", layers=2, length=length, hidden=hidden,
                       batch=args.batch, input_size=args.input_size,
                       implementation=_implementation(impl, args))
    reply.update(impl=impl, length=length, hidden=hidden)
    _log(f"[compile] {impl}: {reply}")
    rows.append(reply)
  return rows


def compile_table(rows: list[dict], args) -> str:
  lines = [f"2-layer LSTM training step (Adam, clipping), B={args.batch}, D={args.input_size}, "
           f"T x H = {args.compile_shape}, fresh process each",
           "| impl | trace + lower s | XLA compile s | total s |", "|---|---|---|---|"]
  for row in rows:
    if "error" in row:
      lines.append(f"| {row['impl']} | error: {row['error']} | | |")
    else:
      lines.append(f"| {row['impl']} | {row['lower_s']:.2f} | {row['compile_s']:.2f} "
                   f"| {row['lower_s'] + row['compile_s']:.2f} |")
  return "\n".join(lines)


# ----------------------------------------------------------------------------
# Command line.
# ----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--shapes", default=None,
                      help="comma-separated TxH (default " + DEFAULTS["shapes"] + ")")
  parser.add_argument("--batch", type=int, default=None, help="B (default 64)")
  parser.add_argument("--input-size", type=int, default=None, help="D (default 32)")
  parser.add_argument("--cells", default="lstm,gru,rnn")
  parser.add_argument("--impls", default="seqjax,flax,torch",
                      help="of " + ",".join(IMPLS) + "; seqjax-scan is added for cells with a "
                      "fast path")
  parser.add_argument("--seqjax-implementation", default="auto",
                      choices=("auto", "scan", "fast", "onednn"),
                      help="unroll(implementation=...) of the 'seqjax' rows")
  parser.add_argument("--repeats", type=int, default=None, help="default 3")
  parser.add_argument("--min-seconds", type=float, default=None,
                      help="timed steps per repeat fill this long (default 0.5; inference half)")
  parser.add_argument("--threads", type=int, default=_usable_cores(),
                      help="torch intra-op threads on the CPU (default: usable cores; XLA "
                      "uses its own pool, restrict both with taskset)")
  parser.add_argument("--torch-no-mkldnn", action="store_true",
                      help="run torch with torch.backends.mkldnn.enabled = False: its CPU "
                      "RNNs then use ATen's own kernels instead of oneDNN's RNN primitives")
  parser.add_argument("--peak-size", type=int, default=None, help="N of the matmul peak")
  parser.add_argument("--sections", default="throughput", help=",".join(SECTIONS))
  parser.add_argument("--memory", action="store_true", help="add the memory section")
  parser.add_argument("--linear", action="store_true", help="add the linear section")
  parser.add_argument("--compile", action="store_true", help="add the compile section")
  parser.add_argument("--memory-length", type=int, default=None, help="default 100000")
  parser.add_argument("--memory-batch", type=int, default=None)
  parser.add_argument("--memory-hidden", type=int, default=None)
  parser.add_argument("--memory-implementation", default="auto",
                      choices=("auto", "scan", "fast", "onednn"),
                      help="the unroll implementation (remat applies to every one)")
  parser.add_argument("--memory-run-fraction", type=float, default=0.5,
                      help="run a variant only if its predicted memory is at most this share "
                      "of the available memory (0: analysis only)")
  parser.add_argument("--linear-lengths", default=None, help="default 1000,10000,100000")
  parser.add_argument("--linear-batch", type=int, default=None)
  parser.add_argument("--linear-size", type=int, default=None)
  parser.add_argument("--compile-shape", default=None, help="TxH, default 100x256")
  parser.add_argument("--quick", action="store_true",
                      help="smoke run: tiny shapes, one repeat, short timings")
  parser.add_argument("--in-process", action="store_true",
                      help="run the workers in this process (no isolation; for tests)")
  parser.add_argument("--json", default=None, help="save the raw results here")
  parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
  return parser


def parse_args(argv=None) -> argparse.Namespace:
  parser = _parser()
  args = parser.parse_args(argv)
  if args.worker:
    return args
  for name, value in (QUICK if args.quick else DEFAULTS).items():
    if getattr(args, name) is None:
      setattr(args, name, value)
  try:
    args.shapes = parse_shapes(args.shapes)
    parse_shapes(args.compile_shape)
  except argparse.ArgumentTypeError as error:
    parser.error(str(error))
  args.cells = [c.strip() for c in args.cells.split(",") if c.strip()]
  args.impls = [i.strip() for i in args.impls.split(",") if i.strip()]
  args.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
  args.sections += [s for s in ("memory", "linear", "compile")
                    if getattr(args, s) and s not in args.sections]
  args.linear_lengths = [int(t) for t in args.linear_lengths.split(",")]
  for name, values, allowed in (("--cells", args.cells, GATES), ("--impls", args.impls, IMPLS),
                                ("--sections", args.sections, SECTIONS)):
    unknown = [v for v in values if v not in allowed]
    if unknown:
      parser.error(f"{name}: unknown {unknown}; choose from {', '.join(allowed)}")
  return args


def main(argv=None) -> dict:
  """Runs the selected sections, prints their tables and returns the raw results."""
  args = parse_args(argv)
  if args.worker:
    _serve(args.worker, args.threads)
    return {}
  if "torch" in args.impls and not torch_available():
    print("torch is not installed (pip install torch): comparing "
          f"{', '.join(i for i in args.impls if i != 'torch')} only", flush=True)
    args.impls = [i for i in args.impls if i != "torch"]
  if args.torch_no_mkldnn:
    os.environ[_TORCH_MKLDNN_ENV] = "0"  # inherited by the torch worker
  pool = _Pool(args)
  results = {"args": {k: v for k, v in vars(args).items()}}
  try:
    info = {"seqjax": pool.request("seqjax", op="info", cells=args.cells + ["lstm"])}
    if "error" in info["seqjax"]:
      raise RuntimeError(f"seqjax worker: {info['seqjax']['error']}")
    if "throughput" in args.sections:
      pool.start(impl for cell in args.cells for impl in _impls_for(cell, args, info))
      for name in ("seqjax", "torch"):
        if name == "torch" and "torch" not in args.impls:
          continue
        if name == "torch":
          info["torch"] = pool.request("torch", op="info")
        peak = pool.request(name, op="peak", size=args.peak_size)
        info[name]["peak_gflops"] = peak.get("gflops")
    results["info"] = info
    print(f"backend {info['seqjax']['backend']} ({info['seqjax']['device']}), "
          + ", ".join(f"{k} {v}" for k, v in info["seqjax"]["versions"].items())
          + (f", torch {info['torch']['versions']['torch']} ({info['torch']['device']})"
             if "torch" in info else ""), flush=True)
    onednn = info["seqjax"]["onednn"]
    status = "built, " if onednn["available"] else "not available: "
    print(f"oneDNN kernel (seqjax-onednn): {status}{onednn['detail']}", flush=True)
    if "throughput" in args.sections:
      peaks = ", ".join(f"{'JAX' if name == 'seqjax' else name} {info[name]['peak_gflops']:.1f}"
                        for name in ("seqjax", "torch")
                        if info.get(name, {}).get("peak_gflops"))
      print(f"float32 matmul peak ({args.peak_size}^3), GFLOP/s: {peaks}")
      print(f"B={args.batch}, D={args.input_size}, float32; tokens/s = B*T / s per step, median "
            f"of {args.repeats}; training = forward + MSE + backward + clip + Adam", flush=True)
      results["throughput"] = throughput(args, pool, info)
      print(throughput_table(results["throughput"], info), flush=True)
    pool.close()  # the sections below use fresh processes: free the throughput workers
    if "memory" in args.sections:
      results["memory"] = memory(args, pool)
      print(memory_table(results["memory"], args), flush=True)
    if "linear" in args.sections:
      results["linear"] = linear(args, pool)
      print(linear_table(results["linear"], args), flush=True)
    if "compile" in args.sections:
      results["compile"] = compile_times(args, pool, info)
      print(compile_table(results["compile"], args), flush=True)
  finally:
    pool.close()
  if args.json:
    with open(args.json, "w") as f:
      json.dump(results, f, indent=1, default=str)
  return results


if __name__ == "__main__":
  main()
