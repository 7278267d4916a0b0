"""Experiments by name.

Each module has ``validate(config)`` and either ``build(config, workdir) ->
(Task, extras)`` and ``report(...)`` (trained by ``seqjax.train``) or
``run(config, workdir, log)`` (experiments that train themselves).
"""

from experiments.tasks import char_lm, esn

TASKS = {"char_lm": char_lm, "esn": esn}
