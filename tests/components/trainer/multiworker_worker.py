"""One Trainer process for tests/components/trainer/test_multiworker.py: the real `run_fn` on
the FnArgs in a JSON file (argv[1]). A worker of a cluster gets its TF_CONFIG
from the environment; without one it is the single-worker reference run.

`--per-replica-mean` swaps in the loss the Trainer had before it took the
global masked mean (each replica divides by its own count of a task's
examples, the replicas' results averaged), for the test that shows the
comparison's tolerance fails on it. `--mirrored-cpus N` splits the CPU into
N logical devices and makes `train.strategy: mirrored` a MirroredStrategy
over them (N replicas in one process, as on a machine with N GPUs)."""
import json
import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")


def per_replica_mean_loss(self, x=None, y=None, y_pred=None, sample_weight=None):
    """The old MultitaskTrainingModel.compute_loss: per-replica masked means."""
    import tensorflow as tf

    del x
    losses, counts = [], []
    for name, loss_fn in zip(self.task_names, self.task_losses):
        weight = tf.reshape(tf.cast(sample_weight[name], y_pred[name].dtype), [-1])
        losses.append(loss_fn(y[name], y_pred[name], weight))
        counts.append(tf.reduce_sum(weight))
    losses, counts = tf.stack(losses), tf.stack(counts)
    total = self.weighting.combine(losses, tf.cast(counts > 0, losses.dtype))
    if self.losses:
        total += tf.add_n(self.losses)
    self.loss_tracker.update_state(total)
    for i, tracker in enumerate(self.task_loss_trackers):
        tracker.update_state(losses[i], sample_weight=counts[i])
    replica = tf.distribute.get_replica_context()
    return total / (replica.num_replicas_in_sync if replica is not None else 1)


def main(argv):
    from tfx.components.trainer.fn_args_utils import FnArgs

    from components.trainer import run_fn as trainer

    with open(argv[1]) as f:
        args = json.load(f)
    if "--mirrored-cpus" in argv[2:]:
        import tensorflow as tf

        n = int(argv[argv.index("--mirrored-cpus") + 1])
        tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0],
                                                   [tf.config.LogicalDeviceConfiguration()] * n)
        made = trainer.make_strategy

        def make_strategy(name):
            strategy = tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(n)]) if name == "mirrored" \
                else made(name)
            print(f"strategy {name!r}: {strategy.num_replicas_in_sync} replica(s)", flush=True)
            return strategy

        trainer.make_strategy = make_strategy
    if "--per-replica-mean" in argv[2:]:
        from components.trainer.training_model import MultitaskTrainingModel
        MultitaskTrainingModel.compute_loss = per_replica_mean_loss
    trainer.run_fn(FnArgs(**args))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
