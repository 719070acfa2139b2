"""`probe`: few-shot classification on frozen features (a linear probe per k-shot draw).

For each seed, k training examples per class are drawn (research/data/subset.py: the same
draw as k-shot fine-tuning with data.subset_seed = seed), their pooled encoder features
(L2-normalised; computed once and cached, see common.Features) fit a multinomial logistic
regression with a stated L2 strength (`l2`, default 1e-3 on normalised features; `steps`
L-BFGS iterations, jitted), and the split's examples are classified. Reports the mean and
the standard deviation over seeds of accuracy and macro-F1, and `seeds`.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from research.data import subset
from research.evaluators import common
from research.schema import ConfigError


@functools.partial(jax.jit, static_argnames=('num_classes', 'steps'))
def fit_logistic(x, y, num_classes: int, l2: float, steps: int):
    """(W [D, C], b [C]) minimising mean cross-entropy + l2/2 * |W|^2 by L-BFGS from zeros."""

    def loss(p):
        logits = x @ p[0] + p[1]
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean() + 0.5 * l2 * jnp.sum(p[0] ** 2)

    params = (jnp.zeros((x.shape[1], num_classes), jnp.float32), jnp.zeros(num_classes, jnp.float32))
    opt = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(loss)

    def step(_, carry):
        p, state = carry
        value, grad = value_and_grad(p, state=state)
        updates, state = opt.update(grad, state, p, value=value, grad=grad, value_fn=loss)
        return optax.apply_updates(p, updates), state

    return jax.lax.fori_loop(0, steps, step, (params, opt.init(params)))[0]


class Evaluator(common.Evaluator):
    def __init__(
        self,
        ctx,
        name,
        *,
        k: int = 4,
        seeds: tuple = (0, 1, 2),
        l2: float = 1e-3,
        steps: int = 200,
        pooling: str = '',
        train_split: str = '',
        cache_dir: str = '',
        **kw,
    ):
        super().__init__(ctx, name, **kw)
        self.k, self.seeds, self.l2, self.steps = k, tuple(seeds), l2, steps
        self.train_split = train_split or ctx.config.data.train_split
        self.features = common.Features(ctx, pooling or ctx.config.model.pooling, self.batch_size, cache_dir)
        labels = ctx.task.examples(ctx.vocab, self.train_split)['labels']
        # Drawn now, so a k larger than a class fails before anything runs.
        self.subsets = [subset.k_per_class(labels, k, s, ctx.task.class_names()) for s in self.seeds]
        self.train_labels = labels

    needs = frozenset({'pooled', 'examples'})

    @classmethod
    def needs_for(cls, config, options):
        return cls.needs | common.target_needs(config, options)

    @classmethod
    def check(cls, config, name, options):
        where = f'config.evals.{name}'
        if options['k'] < 1:
            raise ConfigError(f'{where}.k={options["k"]} must be >= 1 (examples per class)')
        if not options['seeds']:
            raise ConfigError(f'{where}.seeds is empty; give at least one seed')
        if options['l2'] < 0:
            raise ConfigError(f'{where}.l2={options["l2"]} must be >= 0')
        common.check_pooling(options['pooling'], f'config.evals.{name}.pooling')
        common.check_disjoint(config, name, options)

    def run(self, params):
        key = self.features.key(params)
        rows = np.unique(np.concatenate(self.subsets))
        train = dict(zip(rows.tolist(), common.normalize(self.features(params, self.train_split, rows, key))))
        test = common.normalize(self.features(params, self.split, model_key=key))
        labels = self.ctx.task.examples(self.ctx.vocab, self.split)['labels']
        num_classes = len(self.ctx.task.class_names())
        results = []
        for chosen in self.subsets:
            x = np.stack([train[r] for r in chosen.tolist()])
            w, b = fit_logistic(
                jnp.asarray(x), jnp.asarray(self.train_labels[chosen]), num_classes, self.l2, self.steps
            )
            results.append(self.classification(labels, test @ np.asarray(w) + np.asarray(b)))
        return common.mean_and_std(results, self.prefix)
