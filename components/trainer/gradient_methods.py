"""Multitask gradient methods (`train.mtl.method`): K task gradients -> one update.

Each method takes G, the task gradients as rows of a [K, P] matrix (on the
shared parameters, or on the shared representation: `train.mtl.grad_on`),
and `present`, 1.0 for the tasks the batch holds (a task absent from a batch
has no loss and no gradient: its row is 0 and it takes no part). It returns
the combined direction d [P] and the task weights it used [K] (for the
logs; 1.0 for the projection methods). d is on the scale of the plain sum
of the task gradients (what `static` gives with unit loss weights), so one
learning rate suits every method.

  pcgrad    Yu et al. 2020, "Gradient Surgery for Multi-Task Learning": each
            g_i, against the other tasks in a random order, loses its
            component along g_j when g_i . g_j < 0; d = sum of the results.
  cagrad    Liu et al. 2021, "Conflict-Averse Gradient Descent": d = g0 +
            (sqrt(phi) / |g_w|) g_w, g0 the mean gradient, phi = c^2 |g0|^2,
            g_w = G^T w with w on the simplex minimising
            w^T G g0 + sqrt(phi) |G^T w|; rescaled by 1 / (1 + c^2), times K.
  imtl      IMTL-G, Liu et al. 2021, "Towards Impartial Multi-task
            Learning": weights alpha (sum 1) such that d = G^T alpha has the
            same projection on every task's unit gradient u_i; times K.
  nash_mtl  Navon et al. 2022, "Multi-Task Learning as a Bargaining Game":
            alpha > 0 solving (G G^T) alpha = 1 / alpha, found by damped
            Newton steps; d = G^T alpha. When the solver does not converge
            (or a task's gradient is ~0, which has no solution) the step
            falls back to equal weights and `fallback` is 1 (the Trainer
            counts and logs these steps). The equal weights are sqrt(K / sum_i
            |g_i|^2), not 1: a solution's alpha_i goes as 1 / |g_i|, so weights
            of 1 made each fallback step |g| times larger than its neighbours,
            and Adam took a jump (measured in docs/mtl.md).
  rlw       Lin et al. 2022, "Reasonable Effectiveness of Random Weighting":
            weights softmax(z) * K, z ~ N(0, 1) drawn anew each step.
  gradnorm  Chen et al. 2018 (stateful, components/trainer/mtl_step.py):
            `gradnorm_update` moves learned weights towards equal training
            rates.
  famo      Liu et al. 2023, "Fast Adaptive Multitask Optimization"
            (stateful): `famo_combine` and `famo_update`.

Pure TensorFlow on small K (the number of tasks): everything runs inside the
training step's graph, on every replica alike.
"""
from __future__ import annotations

import tensorflow as tf

EPS = 1e-8


def _count(present: tf.Tensor) -> tf.Tensor:
    return tf.maximum(tf.reduce_sum(present), 1.0)


def pcgrad(G: tf.Tensor, present: tf.Tensor, seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """PCGrad; `seed` ([2] int) draws each task's order of the others (stateless: the same
    on every replica). K is static (a Python loop over tasks).

    Worked in coefficient space: every projected g_i' is a combination c_i of the task
    gradients, so its dot products come from the K x K Gram matrix and G is read twice
    (the Gram matrix, then d = (sum_i c_i)^T G) instead of K^2 times."""
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
    return tf.linalg.matvec(G, total, transpose_a=True), present


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


def cagrad(G: tf.Tensor, present: tf.Tensor, c: float = 0.4) -> tuple[tf.Tensor, tf.Tensor]:
    G = G * present[:, None]
    k = _count(present)
    g0 = tf.reduce_sum(G, 0) / k
    gg = tf.linalg.matmul(G, G, transpose_b=True)  # [K, K]
    gg0 = tf.linalg.matvec(G, g0)  # [K]: g_i . g0
    sqrt_phi = c * tf.norm(g0)

    def grad_fn(w):  # gradient of w . G g0 + sqrt(phi) |G^T w|
        gw_norm = tf.sqrt(tf.tensordot(w, tf.linalg.matvec(gg, w), 1) + EPS)
        return gg0 + sqrt_phi * tf.linalg.matvec(gg, w) / gw_norm

    w = _simplex_minimise(grad_fn, k, present)
    gw = tf.linalg.matvec(G, w, transpose_a=True)
    d = g0 + sqrt_phi / (tf.norm(gw) + 1e-4) * gw
    return k * d / (1.0 + c ** 2), w * k


def imtl(G: tf.Tensor, present: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """IMTL-G over the present tasks (at least 2; with one, its own gradient)."""
    idx = tf.where(present > 0)[:, 0]
    g = tf.gather(G, idx)
    u = g / (tf.norm(g, axis=1, keepdims=True) + EPS)
    D = g[:1] - g[1:]  # [k-1, P]
    U = u[:1] - u[1:]
    # alpha_{2..k} = g_1 U^T (D U^T)^-1; alpha_1 = 1 - sum
    rhs = tf.linalg.matvec(U, g[0])  # [k-1]
    A = tf.linalg.matmul(D, U, transpose_b=True)  # [k-1, k-1]
    # pinv: parallel gradients make A singular; float64: the K x K solve is cheap and float32's
    # pinv loses the equal projections in the 4th digit
    rest = tf.cast(tf.linalg.matvec(tf.linalg.pinv(tf.cast(tf.transpose(A), tf.float64)),
                                    tf.cast(rhs, tf.float64)), G.dtype)
    alpha = tf.concat([1.0 - tf.reduce_sum(rest, keepdims=True), rest], 0)
    k = _count(present)
    weights = tf.scatter_nd(idx[:, None], alpha * k, tf.shape(present, out_type=tf.int64))
    return tf.linalg.matvec(G, weights, transpose_a=True), weights


def nash_mtl(G: tf.Tensor, present: tf.Tensor, iterations: int = 30,
             tolerance: float = 1e-3) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Nash-MTL's weights; returns (d, weights, fallback) with fallback 1.0 when equal
    weights were used because Newton's method did not reach `tolerance`."""
    idx = tf.where(present > 0)[:, 0]
    g = tf.gather(G, idx)
    M = tf.linalg.matmul(g, g, transpose_b=True)
    n = tf.shape(M)[0]
    finite = tf.reduce_all(tf.math.is_finite(M))
    M = tf.where(finite, M, tf.eye(n))  # a NaN would make the solve raise; the step falls back below
    alpha = 1.0 / tf.sqrt(tf.linalg.diag_part(M) + EPS)

    def body(i, a):
        residual = tf.linalg.matvec(M, a) - 1.0 / a
        jacobian = M + tf.linalg.diag(1.0 / (a * a))
        # pinv, not solve: an alpha running off to infinity (a task with no gradient) makes the
        # Jacobian singular, and solve would raise inside the training step; non-finite -> no step
        jacobian = tf.where(tf.reduce_all(tf.math.is_finite(jacobian)), jacobian, tf.eye(n))
        step = tf.linalg.matvec(tf.cast(tf.linalg.pinv(tf.cast(jacobian, tf.float64)), a.dtype), residual)
        step = tf.where(tf.math.is_finite(step), step, tf.zeros_like(step))
        return i + 1, tf.maximum(a - step, a / 10.0)  # damped: stays positive

    alpha = tf.while_loop(lambda i, _: i < iterations, body, (tf.constant(0), alpha))[1]
    residual = tf.norm(tf.linalg.matvec(M, alpha) - 1.0 / alpha) / (tf.norm(1.0 / alpha) + EPS)
    # A task whose gradient is (nearly) 0 has no bargaining solution: its alpha runs off to
    # infinity while the residual shrinks; a spread of over 1e4 counts as a failure too.
    spread = tf.reduce_max(alpha) / (tf.reduce_min(alpha) + EPS)
    ok = finite & tf.reduce_all(tf.math.is_finite(alpha)) & (residual < tolerance) & (spread < 1e4)
    # equal weights at a bargaining solution's size (see the module doc)
    equal = tf.sqrt(tf.cast(n, M.dtype) / (tf.linalg.trace(M) + EPS))
    alpha = tf.where(ok, alpha, tf.fill(tf.shape(alpha), equal))
    weights = tf.scatter_nd(idx[:, None], alpha, tf.shape(present, out_type=tf.int64))
    return tf.linalg.matvec(G, weights, transpose_a=True), weights, 1.0 - tf.cast(ok, G.dtype)


def rlw(G: tf.Tensor, present: tf.Tensor, seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    z = tf.random.stateless_normal(tf.shape(present), seed=seed)
    e = tf.exp(z - tf.reduce_max(z)) * present
    weights = e / (tf.reduce_sum(e) + EPS) * _count(present)
    return tf.linalg.matvec(G, weights, transpose_a=True), weights


def gradnorm_update(weights: tf.Tensor, norms: tf.Tensor, losses: tf.Tensor, initial: tf.Tensor,
                    present: tf.Tensor, alpha: float, lr: float) -> tf.Tensor:
    """One GradNorm step on the task weights. norms: |g_i| of the unweighted task losses on
    the shared part; initial: L_i(0). The gradient of sum_i |w_i |g_i| - target_i| with
    target_i = mean_j(w_j |g_j|) (r_i)^alpha held constant is sign(.) |g_i|; r_i = L~_i /
    mean L~, L~_i = L_i / L_i(0). Weights stay positive and sum to the present count."""
    k = _count(present)
    weighted = weights * norms
    mean_norm = tf.reduce_sum(weighted * present) / k
    ratio = tf.math.divide_no_nan(losses, initial)
    r = tf.math.divide_no_nan(ratio, tf.reduce_sum(ratio * present) / k)
    target = tf.stop_gradient(mean_norm * tf.pow(r, alpha))
    new = weights - lr * tf.sign(weighted - target) * norms * present
    new = tf.maximum(new, 1e-3)
    return tf.where(present > 0, new * k / (tf.reduce_sum(new * present) + EPS), weights)


def famo_weights(logits: tf.Tensor, losses: tf.Tensor, present: tf.Tensor) -> tf.Tensor:
    """FAMO's loss weights for this step: c_i = (w_i / L_i) / sum_j (w_j / L_j), w = softmax
    of the logits over the present tasks; times K (the update's direction is that of
    sum_i w_i log L_i)."""
    e = tf.exp(logits - tf.reduce_max(logits)) * present
    w = e / (tf.reduce_sum(e) + EPS)
    c = tf.math.divide_no_nan(w, losses) * present
    return c / (tf.reduce_sum(c) + EPS) * _count(present)


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
