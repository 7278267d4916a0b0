"""Experiments by name.

Each module has ``validate(config)`` and either ``build(config, workdir) ->
(Task, extras)`` and ``report(...)`` (trained by ``seqjax.train``) or
``run(config, workdir, log)`` (experiments that train themselves). The
benchmark-table tasks also have ``baseline(config) -> (name, value)``.
"""

from experiments.tasks import adding, char_lm, copy_memory, esn, mnist, music

TASKS = {"adding": adding, "char_lm": char_lm, "copy_memory": copy_memory, "esn": esn,
         "mnist": mnist, "music": music}
