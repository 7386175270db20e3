"""Multitask gradient methods (`train.mtl.method`): K task gradients -> one update.

Each method takes G, the task gradients as rows of a [K, P] matrix (on the
shared parameters, or on the shared representation summed over the batch:
`train.mtl.grad_on`), and `present`, 1.0 for the tasks the batch holds (a task
absent from a batch has no loss and no gradient: its row is 0 and it takes no
part). It returns a `Combination`:

  coefficients  [K]: the shared part's direction is d = G^T coefficients. Every
                method's d is a combination of the task gradients (PCGrad's
                projections too), so the same coefficients applied to the
                per-example representation gradients give the representation
                mode's update (LibMTL's rep-grad), and they are what the logs
                show as the method's task weights.
  heads         [K]: the weight of each task's own gradient on its own layers
                (the task-specific parameters), as the method's reference code
                gives it: 1 for pcgrad, cagrad and imtl (each head gets its own
                loss gradient), the method's loss weight for the others. With
                `grad_on: representation` the methods in SOLVED_FROM_G give every
                head 1 (components/trainer/mtl_step.py).
  fallback      1.0 when the method's solver failed and it kept its previous
                solution (nash_mtl only; 0 otherwise).

The coefficients are on the scale of the plain sum of the task gradients (what
`static` gives with unit loss weights: K times the mean-based methods' d, as
CAGrad's code does to "match the sum loss"), so one learning rate suits every
method (nash_mtl's too: the reference's normalisation, see `nash_mtl`).

  pcgrad    Yu et al. 2020, "Gradient Surgery for Multi-Task Learning": each
            g_i, against the other tasks in a random order, loses its
            component along g_j when g_i . g_j < 0; d = sum of the results.
  cagrad    Liu et al. 2021, "Conflict-Averse Gradient Descent" (checked against
            Cranial-XIX/CAGrad): d = K (g0 + (sqrt(phi) / |g_w|) g_w) / (1 + c^2),
            g0 the mean gradient, phi = c^2 |g0|^2, g_w = G^T w with w on the
            simplex minimising w^T G g0 + sqrt(phi) |G^T w|. w only steers the
            shared direction: the heads get their own gradients.
  imtl      IMTL-G, Liu et al. 2021, "Towards Impartial Multi-task Learning"
            (checked against LibMTL): alpha (sum 1, closed form, unconstrained
            in sign) such that d = K G^T alpha has the same projection on every
            task's unit gradient. alpha is for the shared part only; the heads
            get their own loss gradients, as the paper's task-specific update.
  nash_mtl  Navon et al. 2022, "Multi-Task Learning as a Bargaining Game"
            (checked against AvivNavon/nash-mtl): alpha > 0 solving
            (G G^T / n) alpha = 1 / alpha, n = |G G^T|_F (the reference's
            normalisation); d = G^T alpha, and the heads are weighted by alpha
            (the reference backpropagates sum_i alpha_i L_i). Solved in
            scale-free form (see `nash_mtl`); a solver failure keeps the
            previous step's solution, never equal weights.
  rlw       Lin et al. 2022, "Reasonable Effectiveness of Random Weighting":
            weights softmax(z) * K, z ~ N(0, 1) drawn anew each step.
  gradnorm  Chen et al. 2018 (stateful, components/trainer/mtl_step.py):
            `gradnorm_update` moves learned weights towards equal training
            rates, by Adam on the paper's gradient-norm loss.
  famo      Liu et al. 2023, "Fast Adaptive Multitask Optimization"
            (stateful): `famo_weights` and `famo_update`, from the task losses
            before and after the step on the same batch (Cranial-XIX/FAMO).

Pure TensorFlow on small K (the number of tasks): everything runs inside the
training step's graph, on every replica alike.
"""
from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

EPS = 1e-8
# The methods that solve for their coefficients from G (the others are loss weightings).
SOLVED_FROM_G = ("pcgrad", "cagrad", "imtl", "nash_mtl")


class Combination(NamedTuple):
    coefficients: tf.Tensor  # [K]: d = G^T coefficients
    heads: tf.Tensor  # [K]: the weight of each task's gradient on its own layers
    fallback: tf.Tensor  # scalar: 1.0 when the solver failed and the previous solution was kept


def direction(G: tf.Tensor, combination: Combination) -> tf.Tensor:
    """d = G^T coefficients: the shared part's update direction [P]."""
    return tf.linalg.matvec(G, combination.coefficients, transpose_a=True)


def _count(present: tf.Tensor) -> tf.Tensor:
    return tf.maximum(tf.reduce_sum(present), 1.0)


def _weighted(weights: tf.Tensor) -> Combination:
    """A loss weighting: the shared part and the heads take the same weights."""
    return Combination(weights, weights, tf.zeros([], weights.dtype))


def pcgrad(G: tf.Tensor, present: tf.Tensor, seed: tf.Tensor) -> Combination:
    """PCGrad; `seed` ([2] int) draws each task's order of the others (stateless: the same
    on every replica). K is static (a Python loop over tasks).

    Worked in coefficient space: every projected g_i' is a combination c_i of the task
    gradients, so its dot products come from the K x K Gram matrix, and d = (sum_i c_i)^T G."""
    k = G.shape[0]
    G = G * present[:, None]
    gram = tf.linalg.matmul(G, G, transpose_b=True)
    eye = tf.eye(k, dtype=G.dtype)
    total = tf.zeros([k], G.dtype)
    for i in range(k):
        order = tf.random.experimental.stateless_shuffle(tf.range(k), seed=seed + i)
        c = eye[i]
        for n in range(k):
            j = order[n]
            dot = tf.tensordot(c, tf.gather(gram, j), 1)  # g_i' . g_j
            # only a conflict (dot < 0) with another present task is projected away
            use = tf.cast((j != i) & (dot < 0), G.dtype) * tf.gather(present, j)
            c = c - use * dot / (tf.gather_nd(gram, tf.stack([j, j])[None])[0] + EPS) * tf.gather(eye, j)
        total += c * present[i]
    return Combination(total, present, tf.zeros([], G.dtype))


def _simplex_minimise(grad_fn, k_present: tf.Tensor, present: tf.Tensor, steps: int = 300) -> tf.Tensor:
    """Exponentiated-gradient (mirror) descent over the simplex of the present tasks,
    from the uniform point; step size scaled by the gradient's largest entry."""
    w = present / k_present

    def body(i, w):
        g = grad_fn(w)
        scale = tf.reduce_max(tf.abs(g) * present) + EPS
        w = w * tf.exp(-g / scale) * present
        return i + 1, w / (tf.reduce_sum(w) + EPS)

    return tf.while_loop(lambda i, _: i < steps, body, (tf.constant(0), w))[1]


def cagrad(G: tf.Tensor, present: tf.Tensor, c: float = 0.4) -> Combination:
    """CAGrad. d = K (g0 + lambda g_w) / (1 + c^2), lambda = sqrt(phi) / |g_w|: task i's
    coefficient is K (1 / K + lambda w_i) / (1 + c^2), never 0 for a present task."""
    G = G * present[:, None]
    k = _count(present)
    gg = tf.linalg.matmul(G, G, transpose_b=True)  # [K, K]
    mean = present / k  # g0 = G^T mean
    gg0 = tf.linalg.matvec(gg, mean)  # [K]: g_i . g0
    sqrt_phi = c * tf.sqrt(tf.maximum(tf.tensordot(mean, gg0, 1), 0.0))

    def grad_fn(w):  # gradient of w . G g0 + sqrt(phi) |G^T w|
        gw_norm = tf.sqrt(tf.tensordot(w, tf.linalg.matvec(gg, w), 1) + EPS)
        return gg0 + sqrt_phi * tf.linalg.matvec(gg, w) / gw_norm

    w = _simplex_minimise(grad_fn, k, present)
    gw_norm = tf.sqrt(tf.maximum(tf.tensordot(w, tf.linalg.matvec(gg, w), 1), 0.0))
    coefficients = k * (mean + sqrt_phi / (gw_norm + EPS) * w) / (1.0 + c ** 2)
    return Combination(coefficients, present, tf.zeros([], G.dtype))


def imtl(G: tf.Tensor, present: tf.Tensor) -> Combination:
    """IMTL-G over the present tasks (at least 2; with one, its own gradient). The closed form
    alpha_{2..k} = g_1 U^T (D U^T)^-1, alpha_1 = 1 - sum (D: g_1 - g_i, U: u_1 - u_i rows)."""
    idx = tf.where(present > 0)[:, 0]
    g = tf.gather(G, idx)
    u = g / (tf.norm(g, axis=1, keepdims=True) + EPS)
    D = g[:1] - g[1:]  # [k-1, P]
    U = u[:1] - u[1:]
    rhs = tf.linalg.matvec(U, g[0])  # [k-1]
    A = tf.linalg.matmul(D, U, transpose_b=True)  # [k-1, k-1]
    # pinv: parallel gradients make A singular; float64: the K x K solve is cheap and float32's
    # pinv loses the equal projections in the 4th digit
    rest = tf.cast(tf.linalg.matvec(tf.linalg.pinv(tf.cast(tf.transpose(A), tf.float64)),
                                    tf.cast(rhs, tf.float64)), G.dtype)
    alpha = tf.concat([1.0 - tf.reduce_sum(rest, keepdims=True), rest], 0)
    k = _count(present)
    coefficients = tf.scatter_nd(idx[:, None], alpha * k, tf.shape(present, out_type=tf.int64))
    return Combination(coefficients, present, tf.zeros([], G.dtype))


def nash_mtl(G: tf.Tensor, present: tf.Tensor, previous: tf.Tensor | None = None, iterations: int = 50,
             tolerance: float = 1e-3, negligible: float = 1e-6) -> tuple[Combination, tf.Tensor]:
    """Nash-MTL's weights alpha > 0 with (G G^T alpha / n)_i = 1 / alpha_i for every present task,
    n = |G G^T|_F: the reference normalises G G^T by its Frobenius norm before it solves and
    applies the solution to the raw gradients, i.e. sqrt(n) times the solution of
    G G^T alpha = 1 / alpha, which puts d on the scale of the task gradients (the bare
    solution's d has a size of ~1 whatever the gradients', and overshot as they shrank).

    Solved in scale-free form: with u_i = g_i / |g_i|, C = U U^T (the cosines) and
    beta_i = alpha_i |g_i| / sqrt(n), the equation is (C beta)_i = 1 / beta_i, the stationary point of
    the convex f(beta) = beta^T C beta / 2 - sum_i log beta_i. Damped Newton on f (a
    backtracking line search that keeps beta > 0), from `previous` (the last solution's
    beta, [K]; 1 where none yet). A task's gradient size no longer matters: a task that is
    nearly learned, with a gradient 1e-5 of the others', is solved like any other.

    Accepted when every present task's equation holds to `tolerance`:
    |beta_i (C beta)_i - 1| < tolerance, i.e. alpha_i (G G^T alpha / n)_i = 1 (the reference's
    stopping test, G^T G alpha = 1 / alpha, taken per task). Otherwise (no solution exists, e.g. two tasks' gradients
    point opposite ways, or G is not finite) the step keeps the previous beta, as the
    reference keeps its previous alpha, and `fallback` is 1.

    A task whose gradient is 0, or under `negligible` times the largest (float32 cannot tell
    its direction), has converged: it is left out of the bargaining and takes the largest
    alpha of the others (alpha goes as 1 / |g|), not counted as a failure.

    Returns (combination, beta): beta [K] to pass as `previous` next step (unchanged for
    tasks not solved this step)."""
    k = G.shape[0]
    if previous is None:
        previous = tf.ones([k], G.dtype)
    dtype = tf.float64
    norms = tf.norm(G, axis=1)
    finite_rows = tf.reduce_all(tf.math.is_finite(G), axis=1)
    finite = tf.reduce_all(finite_rows | (present <= 0))
    top = tf.reduce_max(tf.where((present > 0) & finite_rows, norms, 0.0))
    active = (present > 0) & finite_rows & (norms > negligible * top) & (norms > 0)
    act = tf.cast(active, dtype)
    G_active = tf.where(active[:, None], G, 0.0)
    u = G_active / tf.where(active, norms, 1.0)[:, None]
    C = tf.cast(tf.linalg.matmul(u, u, transpose_b=True), dtype)
    # the inactive tasks get an identity row and column: their equation, beta = 1 / beta, is decoupled
    C = C * act[:, None] * act[None, :] + tf.linalg.diag(1.0 - act)
    previous64 = tf.cast(previous, dtype)
    start = tf.where(active & (previous > 0), previous64, tf.ones([k], dtype))
    steps = tf.constant([0.5 ** n for n in range(40)], dtype)  # the line search's step sizes

    def f(b):  # [..., K] -> [...]
        return 0.5 * tf.reduce_sum(b * tf.linalg.matvec(C, b), -1) - tf.reduce_sum(tf.math.log(b), -1)

    def residual(b):
        return tf.reduce_max(tf.abs(b * tf.linalg.matvec(C, b) - 1.0) * act)

    def body(i, b):
        gradient = tf.linalg.matvec(C, b) - 1.0 / b
        hessian = C + tf.linalg.diag(1.0 / (b * b))  # positive definite for b > 0
        p = -tf.linalg.matvec(tf.linalg.pinv(hessian), gradient)
        candidates = b[None, :] + steps[:, None] * p[None, :]
        positive = tf.reduce_all(candidates > 0, axis=1)
        safe = tf.where(positive[:, None], candidates, tf.ones_like(candidates))
        # Armijo: enough decrease of f
        good = positive & (f(safe) <= f(b) + 1e-4 * steps * tf.tensordot(gradient, p, 1))
        first = tf.argmax(tf.cast(good, tf.int32))
        b = tf.where(tf.reduce_any(good), candidates[first], b)
        return i + 1, b

    # Newton converges quadratically: iterate well past `tolerance`, accept at it
    beta = tf.while_loop(lambda i, b: (i < iterations) & (residual(b) >= 1e-9), body,
                         (tf.constant(0), start))[1]
    solved = finite & tf.reduce_all(tf.math.is_finite(beta)) & (residual(beta) < tolerance)
    beta = tf.where(solved, beta, tf.where(previous64 > 0, previous64, tf.ones([k], dtype)))
    beta = tf.cast(beta, G.dtype)
    # the reference solves for G G^T / |G G^T|_F and applies that alpha to the raw gradients:
    # sqrt(|G G^T|_F) times the solution, so d is on the scale of the task gradients
    scale = tf.sqrt(tf.norm(tf.linalg.matmul(G_active, G_active, transpose_b=True)))
    alpha = tf.where(active, scale * beta / tf.where(active, norms, 1.0), 0.0)
    largest = tf.reduce_max(alpha)
    # a converged (negligible) task: the largest alpha of the others; with none, weight 1 (the sum)
    alpha = tf.where(active, alpha, tf.where(largest > 0, largest, 1.0) * present)
    new_previous = tf.where(active & solved, beta, previous)
    fallback = 1.0 - tf.cast(solved, G.dtype)
    return Combination(alpha, alpha, fallback), new_previous


def rlw(G: tf.Tensor, present: tf.Tensor, seed: tf.Tensor) -> Combination:
    z = tf.random.stateless_normal(tf.shape(present), seed=seed)
    e = tf.exp(z - tf.reduce_max(z)) * present
    return _weighted(e / (tf.reduce_sum(e) + EPS) * _count(present))


def gradnorm_update(weights: tf.Tensor, m: tf.Tensor, v: tf.Tensor, t: tf.Tensor, norms: tf.Tensor,
                    losses: tf.Tensor, initial: tf.Tensor, present: tf.Tensor, alpha: float, lr: float):
    """One GradNorm step on the task weights; returns (weights, m, v) after Adam step number
    `t` (1-based).

    norms: |g_i| of the unweighted task losses on the shared part; initial: L_i(0). The
    paper's loss is L_grad = sum_i |w_i |g_i| - target_i|, target_i = mean_j(w_j |g_j|)
    (r_i)^alpha held constant, r_i = L~_i / mean L~, L~_i = L_i / L_i(0); its gradient on
    w_i is sign(w_i |g_i| - target_i) |g_i|. The paper updates w with the network's
    optimizer; here Adam (beta 0.9, 0.999) at `lr`, so a step is ~lr whatever the gradient
    norms' size (10-300 on the sample data; plain SGD on them jumped between the clamps).
    Then w >= 1e-3 and renormalised to sum to the present count, as the paper does."""
    k = _count(present)
    weighted = weights * norms
    mean_norm = tf.reduce_sum(weighted * present) / k
    ratio = tf.math.divide_no_nan(losses, initial)
    r = tf.math.divide_no_nan(ratio, tf.reduce_sum(ratio * present) / k)
    target = tf.stop_gradient(mean_norm * tf.pow(r, alpha))
    grad = tf.sign(weighted - target) * norms * present
    m = tf.where(present > 0, 0.9 * m + 0.1 * grad, m)
    v = tf.where(present > 0, 0.999 * v + 0.001 * grad * grad, v)
    m_hat, v_hat = m / (1.0 - tf.pow(0.9, t)), v / (1.0 - tf.pow(0.999, t))
    new = tf.maximum(weights - lr * m_hat / (tf.sqrt(v_hat) + 1e-8) * present, 1e-3)
    return tf.where(present > 0, new * k / (tf.reduce_sum(new * present) + EPS), weights), m, v


def famo_weights(logits: tf.Tensor, losses: tf.Tensor, present: tf.Tensor) -> Combination:
    """FAMO's loss weights for this step: c_i = (w_i / L_i) / sum_j (w_j / L_j), w = softmax
    of the logits over the present tasks; times K (the update's direction is that of
    sum_i w_i log L_i)."""
    e = tf.exp(logits - tf.reduce_max(logits)) * present
    w = e / (tf.reduce_sum(e) + EPS)
    c = tf.math.divide_no_nan(w, losses) * present
    return _weighted(c / (tf.reduce_sum(c) + EPS) * _count(present))


def famo_update(logits: tf.Tensor, m: tf.Tensor, v: tf.Tensor, t: tf.Tensor, before: tf.Tensor,
                after: tf.Tensor, present: tf.Tensor, lr: float = 0.025, decay: float = 1e-3):
    """FAMO's logit step from the task losses before and after the model's step on the same
    batch: delta_i = log L_i(before) - log L_i(after), gradient (diag(w) - w w^T) delta plus
    weight decay, applied with Adam (beta 0.9, 0.999) as the paper's code does. Returns
    (logits, m, v) after step number `t` (1-based)."""
    e = tf.exp(logits - tf.reduce_max(logits)) * present
    w = e / (tf.reduce_sum(e) + EPS)
    delta = (tf.math.log(tf.maximum(before, EPS)) - tf.math.log(tf.maximum(after, EPS))) * present
    grad = (w * delta - w * tf.reduce_sum(w * delta) + decay * logits) * present
    m = 0.9 * m + 0.1 * grad
    v = 0.999 * v + 0.001 * grad * grad
    m_hat, v_hat = m / (1.0 - tf.pow(0.9, t)), v / (1.0 - tf.pow(0.999, t))
    step = lr * m_hat / (tf.sqrt(v_hat) + 1e-8) * present
    return logits - step, m, v
