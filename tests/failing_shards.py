"""A shard task that fails at one shard: the crash of a long run, for the resume tests (imported
by module so Ray workers can unpickle it)."""


class Injected(RuntimeError):
    """The failure a test injects at one shard."""


class FailAt:
    """`inner`, except that shard `k` raises (on whichever worker runs it)."""

    def __init__(self, inner, k: int):
        self.inner, self.k = inner, k

    def setup(self):
        self.inner.setup()

    def done(self, shard, rows):
        return self.inner.done(shard, rows)

    def run(self, shard, rows):
        if shard.index == self.k:
            raise Injected(f"injected failure at {shard.name}")
        return self.inner.run(shard, rows)
