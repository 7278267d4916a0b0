"""Experiments by name: one protocol for every task.

A task module (``config.task`` names it in ``TASKS``) has:

  validate(config)               raise ValueError naming the first bad field; called
                                 before anything is loaded or written
  run(config, workdir, log=print) -> dict
                                 do the experiment in ``workdir`` (resuming what is
                                 there) and return its final figures,
                                 ``{"<split>/<metric>": value}``; ``log`` receives
                                 one line per message
  baseline(config) -> (name, value)
                                 the reference a result is printed beside (the table
                                 command's tasks)

``experiments.train`` calls ``validate`` then ``run``, nothing else. Tasks
trained by gradient descent build a ``seqjax.train.loop.Task`` in
``build(config, workdir)`` and run it with ``training.run`` (see
``experiments/tasks/training.py``); tasks solved otherwise (the echo-state
network's closed-form readout) write ``run`` themselves. Every task's model
comes from ``bodies.build_body(config.model)``, except where a task needs
what the resolver does not offer: ``translation`` builds encoder-decoders and
``pathological`` its cells with Pascanu et al.'s initialisations and delays.
"""

from experiments.tasks import (adding, algorithmic, char_lm, copy_memory, esn, graphs, listops,
                               mnist, music, pathological, springs, text_classification,
                               translation)

TASKS = {"adding": adding, "algorithmic": algorithmic, "char_lm": char_lm,
         "copy_memory": copy_memory, "esn": esn, "graphs": graphs, "listops": listops,
         "mnist": mnist, "music": music, "pathological": pathological, "springs": springs,
         "text_classification": text_classification, "translation": translation}
