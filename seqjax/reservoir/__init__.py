"""Reservoir computing on top of the echo-state cell (``seqjax.cells.esn``).

Readouts (closed-form ridge and online RLS/FORCE, ``readout``), the error
measure (``nrmse``, ``metrics``), forecasting (teacher-forced one-step and
closed-loop generation), output feedback and deep reservoirs, vectorised
hyperparameter sweeps, and diagnostics (echo-state property, effective
spectral radius, memory capacity).
"""

from seqjax.cells.esn import connections_per_unit, esn
from seqjax.reservoir.diagnostics import effective_spectral_radius, memory_capacity, state_distance
from seqjax.reservoir.forecast import (closed_loop, deep_esn, esn_with_feedback, feedback_inputs,
                                       one_step_predictions, warmup_and_generate)
from seqjax.reservoir.metrics import nrmse
from seqjax.reservoir.readout import (ReadoutFactor, RLSState, blas_thread_limit, factor_readout,
                                      fit_readout, fit_readout_online, readout, rls_init,
                                      rls_update, solve_readout)
# The module, not its function of the same name: ``reservoir.sweep.sweep(...)``,
# ``reservoir.sweep.grid(...)``.
from seqjax.reservoir import sweep
