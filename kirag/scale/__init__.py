"""Scale-out: work cut into shards, run by an executor — in this process (SerialExecutor, the
default) or on a pool of long-lived Ray workers (RayExecutor, the `ray` extra). Each shard
writes its output under a fixed name (temp + rename); a rerun skips finished shards; the merge is
the caller's, the same for both executors, in shard order."""

from kirag.scale.executors import Executor, RayExecutor, SerialExecutor, make_executor
from kirag.scale.shards import Shard, ShardReport, ShardTask, cut_into_shards, plan_shards

__all__ = [
    "Executor",
    "RayExecutor",
    "SerialExecutor",
    "Shard",
    "ShardReport",
    "ShardTask",
    "cut_into_shards",
    "make_executor",
    "plan_shards",
]
