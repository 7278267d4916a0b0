"""benchmarks/esn_matvec.py: every way of multiplying gives the dense states; ratios are quotients."""

import json

import esn_matvec


def test_quick_run_agrees_with_the_dense_product(tmp_path, capsys):
  path = tmp_path / "matvec.json"
  rows = esn_matvec.main(["--quick", "--json", str(path)])
  out = capsys.readouterr().out
  assert json.loads(path.read_text())["rows"] == rows
  names = [row["product"] for row in rows]
  assert {"dense h @ W", "dense W^T @ h", "gather", "bcoo", "bcsr", "split x2"} <= set(names)
  base = next(row["median_s"] for row in rows if row["product"] == "dense W^T @ h")
  for row in rows:
    assert row["max_abs_diff"] < 1e-5, row
    assert abs(row["vs_dense"] - row["median_s"] / base) < 1e-12
    assert f"| {row['product']} | {row['median_s']:.3f} | {row['vs_dense']:.2f} |" in out


def test_reservoir_has_the_fan_in_of_the_esn_cell():
  w, sources, values = esn_matvec._reservoir(50, 0.1, seed=0)
  assert sources.shape == values.shape == (50, 5)
  assert all(len(set(row)) == 5 for row in sources.tolist())
  assert (w != 0).sum(axis=0).tolist() == [5] * 50   # column j: the inputs of unit j
