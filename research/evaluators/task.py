"""`task`: the task's own loss and metrics on a split (what training is judged by), with the
task's baselines on the same examples."""

import jax
import numpy as np

from research import sharding
from research.data.batching import padded_batches
from research.evaluators import common


class Evaluator(common.Evaluator):
    named = False  # `<split>/<metric>`: one task evaluator per split (checked by the registry)

    def __init__(self, ctx, name, **kw):
        super().__init__(ctx, name, **kw)
        task, model = ctx.task, ctx.model
        self._step = ctx.jit(lambda params, batch: task.loss(model, params, batch, jax.random.key(0), train=False)[1])
        self.baselines = None

    def sums(self, params) -> dict:
        """The task's loss sums over every example of the split, accumulated in float64."""
        ctx = self.ctx
        arrays, _ = ctx.task.eval_arrays(ctx.vocab, self.split)
        total = {}
        for rows in padded_batches(arrays, self.batch_size, sharding.local_rows(self.batch_size)):
            for k, v in self._step(params, ctx.task.eval_batch(ctx.vocab, rows)).items():
                total[k] = total.get(k, 0.0) + np.asarray(v, np.float64)
        return total

    def run(self, params):
        task, ctx = self.ctx.task, self.ctx
        if self.baselines is None:  # the same every time: computed once
            self.baselines = task.baselines(ctx.vocab, self.split)
            stats = task.eval_arrays(ctx.vocab, self.split)[1]
            ctx.log(f'{self.prefix}data: {dict(stats)}')
        sums = self.sums(params)
        out = {f'{self.prefix}{k}': v for k, v in {**task.summarize(sums), **self.baselines}.items()}
        if 'confusion' in sums:  # a classification task
            self.confusion_png(sums['confusion'])
        return out
