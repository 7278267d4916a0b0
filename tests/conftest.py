"""Test configuration: fail loudly on silent dtype bugs."""

import jax

# Tests compare against float64 references where they ask for it explicitly
# (``with jax.enable_x64(True)``); everything else runs in float32, as users do.
jax.config.update("jax_default_matmul_precision", "highest")
