"""benchmarks/linear_scan.py: a tiny run whose printed ratios are the quotients of its times."""

import json
import re

import linear_scan


def test_rows_and_ratios(tmp_path, capsys):
  path = tmp_path / "linear.json"
  # Also under the tests' strict dtype promotion: linear_recurrence mixes
  # real and complex operands explicitly.
  rows = linear_scan.main(["--lengths", "8", "--batch", "2", "--size", "3", "--input-size",
                           "2", "--repeats", "1", "--json", str(path)])
  out = capsys.readouterr().out
  assert json.loads(path.read_text())["rows"] == rows
  assert [row["what"] for row in rows] == [
      "linear_recurrence float32, T=8", "linear_recurrence complex64, T=8", "unroll lru, T=8",
      "unroll min_gru, T=8"]
  for row in rows:
    line = next(l for l in out.splitlines() if l.startswith(f"| {row['what']} |"))
    ratios = [float(r) for r in re.findall(r"\(([\d.]+)x\)", line)]
    want = [row[key][1] / row[key][0] for key in ("forward_s", "grad_s")]
    assert ratios == [float(f"{w:.2f}") for w in want], (line, row)
