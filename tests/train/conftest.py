import pytest


@pytest.fixture(autouse=True)
def _standard_promotion_for_optax(optax_promotion):
  """Tests here build optimizer states and reference updates with optax
  directly: see ``optax_promotion`` in tests/conftest.py."""
  yield
