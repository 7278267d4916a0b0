"""A SIGTERM/Ctrl-C flag, so that a training loop can checkpoint and exit cleanly.

Schedulers (Slurm, Kubernetes, preemptible cloud VMs) send SIGTERM some seconds
before killing a job; a person presses Ctrl-C (SIGINT). Both should end the run
at a step boundary with a checkpoint, not in the middle of a write::

  with StopRequested() as stop:
    while step < total_steps and not stop.requested:
      state, metrics = train_step(state, batch)
      ...
    checkpointer.save(step, state, force=True)
  if stop.requested:
    print(f"stopped by {stop.signal_name} at step {step}")

Multi-host: the signal reaches each process separately; all processes must
agree to stop at the same step (e.g. by all-gathering ``stop.requested`` every
few steps) before saving a checkpoint collectively.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any, Optional

from absl import logging

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequested:
  """Context manager whose ``requested`` flag turns True on SIGTERM or SIGINT.

  On entry it replaces the SIGTERM and SIGINT handlers by one that sets the
  flag and records ``signal_name``; the program keeps running so it can save.
  Once a stop has been requested, a further SIGINT (a second Ctrl-C) raises
  ``KeyboardInterrupt`` as usual, for when the clean stop takes too long;
  further SIGTERMs are ignored. On exit the previous handlers are restored.

  Python only lets the main thread install signal handlers, so in any other
  thread the context manager does nothing: ``requested`` stays False and the
  process keeps its normal signal behaviour.

  Attributes:
    signal_name: ``"SIGTERM"`` or ``"SIGINT"`` once a stop was requested, else
      None.
  """

  def __init__(self):
    self.signal_name: Optional[str] = None
    self._requested = False
    self._previous: dict[int, Any] = {}

  @property
  def requested(self) -> bool:
    """True once SIGTERM or SIGINT arrived inside the ``with`` block."""
    return self._requested

  def _handle(self, signum: int, frame: Optional[FrameType]) -> None:
    del frame
    if self._requested:
      if signum == signal.SIGINT:
        raise KeyboardInterrupt
      return
    self._requested = True
    self.signal_name = signal.Signals(signum).name
    logging.warning("Received %s: stopping after the current step (press "
                    "Ctrl-C again to stop immediately).", self.signal_name)

  def __enter__(self) -> "StopRequested":
    if self._previous:
      raise RuntimeError("StopRequested is already active; create a new one "
                         "to nest")
    self._requested = False
    self.signal_name = None
    if threading.current_thread() is threading.main_thread():
      for signum in _SIGNALS:
        self._previous[signum] = signal.signal(signum, self._handle)
    return self

  def __exit__(self, *exc_info) -> None:
    previous, self._previous = self._previous, {}
    for signum, handler in previous.items():
      # ``None`` means the old handler was installed from C and cannot be
      # reinstalled from Python; the default is the closest we can do.
      signal.signal(signum, signal.SIG_DFL if handler is None else handler)

  def __repr__(self) -> str:
    return f"StopRequested(requested={self._requested}, signal_name={self.signal_name!r})"
