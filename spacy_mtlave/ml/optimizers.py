"""``spacy_mtlave.LazyAdam.v1``: thinc's Adam, except that what got no gradient in an update does not move.

thinc's Adam is dense: a parameter whose gradient is all zero still moves by its momentum (about 0.67 x lr on the
next step, decaying after) and its moments decay. In a multi-task pipeline most heads and most pairs' attention
vectors are absent from any one batch, so they would drift on every update. LazyAdam skips, per parameter, the rows
(first axis; the whole parameter if it is 1-D) whose gradient is exactly zero: their values and Adam moments are left
as they were, as in TensorFlow's LazyAdam. Rows that did get a gradient take the usual Adam step (bias correction
counted per parameter, as in thinc). Everything else (L2, grad_clip, averages) is thinc's.
"""
from typing import Tuple

from spacy import util
from thinc.api import Optimizer
from thinc.backends import get_array_ops
from thinc.types import FloatsXd


class LazyAdam(Optimizer):
    """thinc's Optimizer (Adam) that leaves untouched rows of a parameter, and untouched parameters, alone."""

    def __call__(self, key: Tuple[int, str], weights: FloatsXd, gradient: FloatsXd, *, lr_scale: float = 1.0):
        if len(gradient) < 1:
            return weights, gradient
        xp = get_array_ops(weights).xp
        rows = gradient.reshape(gradient.shape[0], -1) if gradient.ndim > 1 else gradient.reshape(1, -1)
        touched = xp.any(rows != 0, axis=1)
        if not bool(touched.any()):  # no gradient at all: no step, no moment decay, no update count
            return weights, gradient
        if bool(touched.all()) or weights.ndim < 2:
            return super().__call__(key, weights, gradient, lr_scale=lr_scale)
        untouched = ~touched
        kept_weights = weights[untouched].copy()
        mom1, mom2 = self.mom1.get(key), self.mom2.get(key)
        kept_moments = None
        if mom1 is not None and mom2 is not None:
            m1, m2 = mom1.reshape(weights.shape), mom2.reshape(weights.shape)
            kept_moments = (m1[untouched].copy(), m2[untouched].copy())
        weights, gradient = super().__call__(key, weights, gradient, lr_scale=lr_scale)
        weights[untouched] = kept_weights
        m1, m2 = self.mom1[key].reshape(weights.shape), self.mom2[key].reshape(weights.shape)
        if kept_moments is None:
            m1[untouched] = 0.0
            m2[untouched] = 0.0
        else:
            m1[untouched], m2[untouched] = kept_moments
        return weights, gradient


@util.registry.optimizers("spacy_mtlave.LazyAdam.v1")
def create_lazy_adam(
    learn_rate: float = 0.001,
    *,
    L2: float = 0.0,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-08,
    grad_clip: float = 1.0,
    L2_is_weight_decay: bool = True,
    use_averages: bool = True,
) -> LazyAdam:
    """The arguments (and defaults) of thinc's ``Adam.v1``; see :class:`LazyAdam`."""
    return LazyAdam(
        learn_rate,
        L2=L2,
        beta1=beta1,
        beta2=beta2,
        eps=eps,
        grad_clip=grad_clip,
        L2_is_weight_decay=L2_is_weight_decay,
        use_averages=use_averages,
    )
