"""The quick-start demo trains: its test loss falls well below the mean predictor's."""

import pytest
from experiments import demo


@pytest.mark.usefixtures("optax_promotion")  # calls optax directly
def test_demo_lowers_the_loss():
  history = demo.train("gru", length=8, hidden_size=16, steps=250, batch_size=32,
                       log_every=50, log=lambda _: None)
  first, last = history[0][1], history[-1][1]
  assert last < 0.5 * first, history
