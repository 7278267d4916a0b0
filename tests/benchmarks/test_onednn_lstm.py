"""benchmarks/onednn_lstm.py: the verbose-log parser and a tiny seqjax run."""

import importlib.util
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _module():
  spec = importlib.util.spec_from_file_location("onednn_lstm", ROOT / "benchmarks" / "onednn_lstm.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_parse_log_reads_both_verbose_formats():
  log = "\n".join([
      # oneDNN 3.2 (seqjax's wheel) and 3.12 (inside torch) print different prefixes.
      "onednn_verbose,exec,cpu,rnn,brgemm:avx512_core,forward_inference,src,attr,alg,dims,20.5",
      "onednn_verbose,exec,cpu,reorder,jit:uni,undef,src dst,,,1x1x32x4x256,0.04",
      "MARK train",
      "onednn_verbose,v1,primitive,exec,cpu,rnn,ref,forward_training,src,attr,alg,dims,34.0",
      "onednn_verbose,v1,primitive,exec,cpu,rnn,ref,backward,src,attr,alg,dims,54.0",
      "MARK after",
      "onednn_verbose,exec,cpu,rnn,brgemm:avx512_core,forward_inference,src,attr,alg,dims,30.0",
      "onednn_verbose,exec,cpu,rnn,brgemm:avx512_core,forward_inference,src,attr,alg,dims,32.0",
  ])
  stages = _module().parse_log(log)
  assert stages == {
      "forward_inference (first)": {"impl": "brgemm:avx512_core", "ms": [20.5]},
      "forward_training": {"impl": "ref", "ms": [34.0]},
      "backward": {"impl": "ref", "ms": [54.0]},
      "forward_inference (after training)": {"impl": "brgemm:avx512_core", "ms": [30.0, 32.0]},
  }


def test_tiny_seqjax_run(capsys):
  results = _module().main(["--batch", "2", "--length", "3", "--input-size", "2", "--hidden", "4",
                            "--calls", "2", "--train-steps", "1", "--impls", "seqjax"])
  stages = results["seqjax"]
  assert set(stages) == {"forward_inference (first)", "forward_training", "backward",
                         "forward_inference (after training)"}
  assert len(stages["forward_inference (first)"]["ms"]) == 2
  assert all(t > 0 for entry in stages.values() for t in entry["ms"])
  assert "| seqjax | backward |" in capsys.readouterr().out
