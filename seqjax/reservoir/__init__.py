"""Reservoir computing on top of the echo-state cell (``seqjax.cells.esn``).

Readouts (closed-form ridge in ``seqjax.cells.esn``, online RLS/FORCE here),
forecasting (teacher-forced one-step and closed-loop generation), output
feedback and deep reservoirs, vectorised hyperparameter sweeps, and
diagnostics (echo-state property, effective spectral radius, memory capacity).
"""

from seqjax.cells.esn import esn, fit_readout, readout
from seqjax.reservoir.forecast import (closed_loop, deep_esn, esn_with_feedback, feedback_inputs,
                                       nrmse, one_step_predictions, warmup_and_generate)
from seqjax.reservoir.readout import RLSState, fit_readout_online, rls_init, rls_update
from seqjax.reservoir.diagnostics import effective_spectral_radius, memory_capacity, state_distance
# The module, not its function of the same name: ``reservoir.sweep.sweep(...)``,
# ``reservoir.sweep.grid(...)``.
from seqjax.reservoir import sweep
