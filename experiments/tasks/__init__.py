"""Experiments by name: each module has build(config, workdir) -> (Task, extras) and report(...)."""

from experiments.tasks import char_lm

TASKS = {"char_lm": char_lm}
