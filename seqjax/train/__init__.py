"""Training: train state, jitted steps, sharding, checkpoints, metrics, the workdir lock, the loop."""

from seqjax.train.checkpoint import CheckpointError, Checkpointer
from seqjax.train.lock import WorkdirLockedError, hold_workdir
from seqjax.train.loop import NonFiniteError, Task, evaluate, restore_params, train_and_evaluate
from seqjax.train.metrics import MetricWriter, Progress, read_metrics
from seqjax.train.optim import default_optimizer_config, make_optimizer
from seqjax.train.preemption import StopRequested
from seqjax.train.sharding import make_mesh, replicate, shard_batch, shard_train_state
from seqjax.train.state import TrainState, create_train_state
from seqjax.train.step import make_eval_step, make_train_step
