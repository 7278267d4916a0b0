r"""oneDNN's LSTM primitive as seqjax and PyTorch run it: per-primitive times.

Each measurement runs in a fresh process with oneDNN's verbose log on
(``DNNL_VERBOSE=1`` for seqjax's oneDNN 3.2, ``ONEDNN_VERBOSE=1`` for the
oneDNN inside torch), which prints every primitive execution with its time.
The child does ``--calls`` inference calls, then ``--train-steps`` training
steps (forward + backward), then ``--calls`` inference calls again, on one LSTM
layer (B, T, D, H as flagged; float32; batch-major input). Printed: the median
time of each primitive kind (``forward_inference`` before and after the
training step, ``forward_training``, ``backward``) and the implementation
oneDNN chose (``brgemm:avx512_core``, ``ref``, ...).

  python benchmarks/onednn_lstm.py                       # T=100, H=256, seqjax and torch
  python benchmarks/onednn_lstm.py --length 100 --hidden 1024 --calls 10
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys

_CHILD = {
    "seqjax": r"""
import jax, jax.numpy as jnp, seqjax
B, T, D, H, CALLS, STEPS = {batch}, {length}, {input_size}, {hidden}, {calls}, {steps}
cell = seqjax.cells.lstm(H)
params = cell.init(jax.random.PRNGKey(0), D)
xs = jax.random.normal(jax.random.PRNGKey(1), (B, T, D))
infer = jax.jit(lambda p, x: seqjax.unroll(cell, p, x, implementation="onednn")[1])
grad = jax.jit(jax.grad(lambda p, x: jnp.sum(
    seqjax.unroll(cell, p, x, implementation="onednn")[1] ** 2)))
for _ in range(CALLS):
  infer(params, xs).block_until_ready()
print("MARK train", flush=True)
for _ in range(STEPS):
  jax.block_until_ready(grad(params, xs))
print("MARK after", flush=True)
for _ in range(CALLS):
  infer(params, xs).block_until_ready()
""",
    "torch": r"""
import torch
torch.set_num_threads(len(__import__("os").sched_getaffinity(0)))
B, T, D, H, CALLS, STEPS = {batch}, {length}, {input_size}, {hidden}, {calls}, {steps}
lstm = torch.nn.LSTM(D, H, batch_first=True)
xs = torch.randn(B, T, D)
with torch.no_grad():
  for _ in range(CALLS):
    lstm(xs)
print("MARK train", flush=True)
for _ in range(STEPS):
  lstm(xs)[0].pow(2).sum().backward()
print("MARK after", flush=True)
with torch.no_grad():
  for _ in range(CALLS):
    lstm(xs)
""",
}


def parse_log(text: str) -> dict:
  """``{stage: {"impl": name, "ms": [times]}}`` from a verbose log with MARK lines."""
  stages, phase = {}, "before"
  for line in text.splitlines():
    if line.startswith("MARK "):
      phase = line.split()[1]
      continue
    fields = line.split(",")
    if "exec" not in fields or "rnn" not in fields:
      continue
    rnn = fields.index("rnn")
    impl, kind = fields[rnn + 1], fields[rnn + 2]
    stage = f"{kind} ({'after training' if phase == 'after' else 'first'})" \
        if kind == "forward_inference" else kind
    entry = stages.setdefault(stage, {"impl": impl, "ms": []})
    entry["ms"].append(float(fields[-1]))
  return stages


def measure(name: str, args) -> dict:
  code = _CHILD[name].format(batch=args.batch, length=args.length, input_size=args.input_size,
                             hidden=args.hidden, calls=args.calls, steps=args.train_steps)
  env = dict(os.environ, DNNL_VERBOSE="1", ONEDNN_VERBOSE="1")
  proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                        check=False)
  if proc.returncode != 0:
    raise RuntimeError(f"{name} child failed:\n{proc.stderr[-3000:]}")
  return parse_log(proc.stdout)


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--batch", type=int, default=64)
  parser.add_argument("--length", type=int, default=100)
  parser.add_argument("--input-size", type=int, default=32)
  parser.add_argument("--hidden", type=int, default=256)
  parser.add_argument("--calls", type=int, default=20)
  parser.add_argument("--train-steps", type=int, default=5)
  parser.add_argument("--impls", default="seqjax,torch")
  args = parser.parse_args(argv)
  impls = [i for i in args.impls.split(",") if i]
  if "torch" in impls and importlib.util.find_spec("torch") is None:
    print("torch is not installed: seqjax only")
    impls.remove("torch")
  print(f"LSTM B={args.batch} T={args.length} D={args.input_size} H={args.hidden}: "
        f"median ms per primitive execution (oneDNN verbose log)")
  print("| impl | primitive | oneDNN implementation | calls | median ms |")
  print("|---|---|---|---|---|")
  results = {}
  for name in impls:
    results[name] = measure(name, args)
    for stage, entry in results[name].items():
      print(f"| {name} | {stage} | {entry['impl']} | {len(entry['ms'])} "
            f"| {statistics.median(entry['ms']):.1f} |")
  return results


if __name__ == "__main__":
  main()
