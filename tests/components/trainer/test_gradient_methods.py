"""Each gradient method (components/trainer/gradient_methods.py) on a case with a known answer,
worked out by hand from the paper's (or the reference code's) update rule."""
import itertools

import numpy as np
import pytest
import tensorflow as tf

from components.trainer import gradient_methods as gm

SEED = tf.constant([1, 2])
ALL = tf.constant([1.0, 1.0])


def f32(x):
    return tf.constant(np.asarray(x, np.float32))


def d_of(G, combination):
    return gm.direction(f32(G), combination).numpy()


def test_pcgrad_projects_conflicts_exactly():
    # g1 . g2 = -1 < 0: g1' = g1 - (-1 / 2) g2 = (0.5, 0.5); g2' = g2 - (-1 / 1) g1 = (0, 1)
    G = [[1, 0], [-1, 1]]
    out = gm.pcgrad(f32(G), ALL, SEED)
    np.testing.assert_allclose(d_of(G, out), [0.5, 1.5], atol=1e-6)
    # as coefficients of the task gradients: g1' = g1 + g2 / 2, g2' = g2 + g1 -> (2, 1.5)
    np.testing.assert_allclose(out.coefficients.numpy(), [2, 1.5], atol=1e-6)
    np.testing.assert_array_equal(out.heads.numpy(), [1, 1])  # each head: its own gradient
    # the projected g1' is orthogonal to g2 (the surgery's defining property)
    np.testing.assert_allclose(np.dot([0.5, 0.5], [-1, 1]), 0.0)


def test_pcgrad_leaves_agreeing_gradients_and_absent_tasks_alone():
    out = gm.pcgrad(f32([[1, 0], [1, 1]]), ALL, SEED)
    np.testing.assert_allclose(d_of([[1, 0], [1, 1]], out), [2, 1], atol=1e-6)
    # task 2 absent: it neither projects task 1 nor counts in the sum
    out = gm.pcgrad(f32([[1, 0], [-5, 1]]), f32([1, 0]), SEED)
    np.testing.assert_allclose(out.coefficients.numpy(), [1, 0], atol=1e-6)
    np.testing.assert_array_equal(out.heads.numpy(), [1, 0])


def test_pcgrad_two_conflicting_quadratics_reach_the_pareto_set():
    """L1 = |x - a|^2, L2 = |x - b|^2: PCGrad steps from x0 end on the segment [a, b]."""
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    x = np.array([3.0, -2.0])
    for step in range(200):
        G = [2 * (x - a), 2 * (x - b)]
        x = x - 0.05 * d_of(G, gm.pcgrad(f32(G), ALL, SEED + step))
    t = np.dot(x - a, b - a) / np.dot(b - a, b - a)
    np.testing.assert_allclose(x, a + np.clip(t, 0, 1) * (b - a), atol=1e-3)


def test_cagrad_with_c_zero_is_the_sum():
    G = [[1, 0], [-1, 2]]
    out = gm.cagrad(f32(G), ALL, c=0.0)
    np.testing.assert_allclose(d_of(G, out), [0, 2], atol=1e-5)
    np.testing.assert_allclose(out.coefficients.numpy(), [1, 1], atol=1e-5)


def cagrad_objective(G, w, c):
    g0 = G.mean(0)
    return w @ G @ g0 + c * np.linalg.norm(g0) * np.linalg.norm(w @ G)


def test_cagrad_direction_is_the_papers_for_the_simplex_minimum():
    G = np.array([[1.0, 0.0], [-0.5, 1.0]])  # the minimum is inside the simplex, w_1 = 0.617
    c = 0.5
    out = gm.cagrad(f32(G), ALL, c=c)
    grid = np.linspace(0, 1, 200001)
    p = grid[np.argmin([cagrad_objective(G, np.array([q, 1 - q]), c) for q in grid])]
    w = np.array([p, 1 - p])
    # d = K (g0 + sqrt(phi) / |g_w| g_w) / (1 + c^2), sqrt(phi) = c |g0|, g_w = G^T w
    g0, gw = G.mean(0), w @ G
    expected = 2 * (g0 + c * np.linalg.norm(g0) / np.linalg.norm(gw) * gw) / (1 + c ** 2)
    np.testing.assert_allclose(d_of(G, out), expected, rtol=1e-3)


def test_cagrad_gives_a_head_its_own_gradient_when_its_simplex_weight_is_zero():
    """G = [[1, 0], [0, 0.1]], c = 0.4: the simplex minimum is the vertex w = (0, 1) (the
    objective's slope towards task 1 at p = 0 is 0.495 - 0.0201 > 0), so the old code gave task
    1's head w_1 K = 0. The reference gives each head its own loss gradient; task 1 keeps its
    share of d: K / (1 + c^2) (1 / K + lambda w_1) = 1 / 1.16."""
    G = np.array([[1.0, 0.0], [0.0, 0.1]])
    c = 0.4
    out = gm.cagrad(f32(G), ALL, c=c)
    lam = c * np.linalg.norm(G.mean(0)) / 0.1  # sqrt(phi) / |g_w|, g_w = g_2
    np.testing.assert_allclose(out.coefficients.numpy(), 2 / 1.16 * np.array([0.5, 0.5 + lam]), rtol=1e-4)
    np.testing.assert_allclose(d_of(G, out), 2 / 1.16 * (G.mean(0) + lam * G[1]), rtol=1e-4)
    np.testing.assert_array_equal(out.heads.numpy(), [1, 1])


def test_cagrad_improves_the_worst_task_more_than_the_sum():
    G = np.array([[4.0, 0.0], [-1.0, 0.5]], np.float32)
    d = d_of(G, gm.cagrad(f32(G), ALL, c=0.5))
    worst = lambda v: min(G @ v)  # noqa: E731  first-order decrease of the worst task
    assert worst(d) > worst(G.sum(0))


def test_imtl_projections_are_equal():
    G = np.array([[3.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, -2.0, 0.5]], np.float32)
    out = gm.imtl(f32(G), f32([1, 1, 1]))
    u = G / np.linalg.norm(G, axis=1, keepdims=True)
    proj = u @ d_of(G, out)
    np.testing.assert_allclose(proj, proj[0], rtol=1e-4)
    assert out.coefficients.numpy().sum() == pytest.approx(3.0, rel=1e-5)  # alpha sums to 1, times K


def test_imtl_three_correlated_tasks_negative_alpha_stays_off_the_heads():
    """g1 = (2, 0, 0), g2 = (1, 1, 0.5), g3 = (0, 2, 0); g2 sits between the others (cosines 2/3).
    IMTL-G's closed form: alpha = (1.5, -2, 1.5), sum 1, d = G^T alpha = (1, 1, -1) with
    projection 1 on every unit gradient (u2 . d = (1 + 1 - 0.5) / 1.5). The shared part takes
    K alpha = (4.5, -6, 4.5); the heads take their own gradients (weight 1), as the paper's
    task-specific update: the old code scaled task 2's head by -6, gradient ascent."""
    G = np.array([[2.0, 0.0, 0.0], [1.0, 1.0, 0.5], [0.0, 2.0, 0.0]])
    out = gm.imtl(f32(G), f32([1, 1, 1]))
    np.testing.assert_allclose(out.coefficients.numpy(), [4.5, -6.0, 4.5], rtol=1e-5)
    np.testing.assert_allclose(d_of(G, out), [3, 3, -3], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(out.heads.numpy(), [1, 1, 1])


def test_imtl_skips_an_absent_task():
    G = np.array([[2.0, 0.0], [0.0, 0.0], [0.0, 4.0]], np.float32)
    out = gm.imtl(f32(G), f32([1, 0, 1]))
    assert out.coefficients.numpy()[1] == 0
    np.testing.assert_array_equal(out.heads.numpy(), [1, 0, 1])
    # two orthogonal gradients: equal projections on both unit vectors, weights sum to 2
    d = d_of(G, out)
    np.testing.assert_allclose(d[0], d[1], rtol=1e-5)
    assert out.coefficients.numpy().sum() == pytest.approx(2.0, rel=1e-5)


def frobenius(G):
    return np.linalg.norm(np.asarray(G) @ np.asarray(G).T)


def test_nash_mtl_orthogonal_gradients_get_inverse_norm_weights():
    # M = G G^T = diag(4, 16), n = |M|_F = sqrt(272): (M alpha / n)_i = 1 / alpha_i ->
    # alpha = n^(1/2) (1/2, 1/4), d = n^(1/2) (1, 1)
    s = np.sqrt(frobenius([[2, 0], [0, 4]]))
    out, _ = gm.nash_mtl(f32([[2, 0], [0, 4]]), ALL)
    np.testing.assert_allclose(out.coefficients.numpy(), s * np.array([0.5, 0.25]), rtol=1e-4)
    np.testing.assert_allclose(out.heads.numpy(), out.coefficients.numpy())  # the reference: sum alpha_i L_i
    np.testing.assert_allclose(d_of([[2, 0], [0, 4]], out), [s, s], rtol=1e-4)
    assert float(out.fallback) == 0.0


def test_nash_mtl_solves_the_bargaining_equation_from_any_start():
    G = np.array([[1.0, 0.5, 0.0], [0.2, 1.0, -0.3], [0.0, 0.1, 2.0]])
    first = None
    for previous in ([1.0, 1.0, 1.0], [0.01, 5.0, 0.3], [40.0, 40.0, 0.02]):
        out, beta = gm.nash_mtl(f32(G), f32([1, 1, 1]), f32(previous))
        a = out.coefficients.numpy()
        np.testing.assert_allclose(G @ G.T @ a / frobenius(G), 1 / a, rtol=1e-3)
        assert float(out.fallback) == 0.0
        np.testing.assert_allclose(beta.numpy(), a * np.linalg.norm(G, axis=1) / np.sqrt(frobenius(G)), rtol=1e-5)
        first = a if first is None else first
        np.testing.assert_allclose(a, first, rtol=1e-3)  # the solution is unique


def test_nash_mtl_solves_when_one_task_is_nearly_learned():
    """g2 is 1e-5 of g1 (a learned task), at cosine 0.6. Scale-free: with C = [[1, .6], [.6, 1]],
    beta_1 = beta_2 = b and 1.6 b = 1 / b, b = 1 / sqrt(1.6); alpha_i = b / |g_i| (times
    |G G^T|_F^(1/2) = 1 + 4e-11). The old check (alpha's spread < 1e4) threw this solution away
    for equal weights."""
    G = np.array([[1.0, 0.0], [0.6e-5, 0.8e-5]])
    out, _ = gm.nash_mtl(f32(G), ALL)
    b = 1 / np.sqrt(1.6)
    assert float(out.fallback) == 0.0
    np.testing.assert_allclose(out.coefficients.numpy(), [b, b * 1e5], rtol=1e-4)
    np.testing.assert_allclose(d_of(G, out), b * np.array([1.6, 0.8]), rtol=1e-4)


def test_nash_mtl_a_task_with_no_gradient_has_converged():
    # |g2| = 0: no bargaining role (alpha_2 would be infinite); g1 alone: n = 4, alpha_1 =
    # sqrt(n) / |g1| = 1; task 2 takes the largest alpha of the others, and it is no failure
    out, _ = gm.nash_mtl(f32([[2, 0], [0, 0]]), ALL)
    assert float(out.fallback) == 0.0
    np.testing.assert_allclose(out.coefficients.numpy(), [1.0, 1.0], rtol=1e-5)
    np.testing.assert_allclose(d_of([[2, 0], [0, 0]], out), [2, 0], rtol=1e-5)


@pytest.mark.parametrize("previous, alpha", [([1.0, 1.0], [1.0, 0.5]), ([0.5, 2.0], [0.5, 1.0])])
def test_nash_mtl_failure_keeps_the_previous_solution(previous, alpha):
    """Opposite gradients g1 = (1, 0), g2 = (-2, 0): no d improves both, so (G G^T alpha)_i =
    1 / alpha_i has no positive solution. The step keeps the previous solution beta (alpha_i =
    sqrt(n) beta_i / |g_i|, n = |G G^T|_F = 5), never equal weights, and counts a fallback."""
    out, beta = gm.nash_mtl(f32([[1, 0], [-2, 0]]), ALL, f32(previous))
    assert float(out.fallback) == 1.0
    np.testing.assert_allclose(out.coefficients.numpy(), np.sqrt(5) * np.array(alpha), rtol=1e-5)
    np.testing.assert_allclose(beta.numpy(), previous)


def test_nash_mtl_non_finite_gradients_keep_the_previous_solution():
    out, beta = gm.nash_mtl(f32([[1, 0], [np.nan, 1]]), ALL, f32([0.5, 3.0]))
    assert float(out.fallback) == 1.0
    assert out.coefficients.numpy()[0] == pytest.approx(0.5)
    np.testing.assert_allclose(beta.numpy(), [0.5, 3.0])


def test_nash_mtl_absent_task():
    out, beta = gm.nash_mtl(f32([[2, 0], [0, 0]]), f32([1, 0]), f32([1.0, 7.0]))
    np.testing.assert_allclose(out.coefficients.numpy(), [1.0, 0.0], rtol=1e-5)  # sqrt(4) / 2
    assert float(out.fallback) == 0.0
    assert beta.numpy()[1] == pytest.approx(7.0)  # an absent task's last solution is kept


def test_rlw_weights_are_a_scaled_softmax_of_normal_draws():
    out = gm.rlw(f32([[1, 0], [0, 1]]), ALL, SEED)
    z = tf.random.stateless_normal([2], seed=SEED).numpy()
    expected = 2 * np.exp(z) / np.exp(z).sum()
    np.testing.assert_allclose(out.coefficients.numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(out.heads.numpy(), expected, rtol=1e-5)
    out = gm.rlw(f32([[1, 0], [0, 1]]), f32([0, 1]), SEED)
    np.testing.assert_allclose(out.coefficients.numpy(), [0, 1], rtol=1e-6)


@pytest.mark.parametrize("norm", [1.0, 300.0])
def test_gradnorm_takes_an_adam_step_towards_the_slower_task(norm):
    """Equal gradient norms, task 2's loss fell less: L~ = (0.5, 1), r = (2/3, 4/3); target_i =
    mean(w |g|) r_i^1.5 = |g| (0.544, 1.540): task 1 is above its target, task 2 below, so the
    gradient of L_grad on w is (+|g|, -|g|). Adam's first step is lr times its sign, whatever
    |g| is: w = (1 - 0.1, 1 + 0.1), already summing to K. (Plain SGD moved by 0.1 |g|: 30 at
    |g| = 300, onto the clamp.)"""
    zeros = f32([0, 0])
    w, m, v = gm.gradnorm_update(f32([1, 1]), zeros, zeros, tf.constant(1.0), norms=f32([norm, norm]),
                                 losses=f32([0.5, 1.0]), initial=f32([1, 1]), present=ALL, alpha=1.5, lr=0.1)
    np.testing.assert_allclose(w.numpy(), [0.9, 1.1], rtol=1e-5)
    np.testing.assert_allclose(m.numpy(), [0.1 * norm, -0.1 * norm], rtol=1e-5)
    # at balance (equal norms, equal rates) nothing moves
    w, _, _ = gm.gradnorm_update(f32([1, 1]), zeros, zeros, tf.constant(1.0), f32([1, 1]), f32([1, 1]),
                                 f32([1, 1]), ALL, alpha=1.5, lr=0.1)
    np.testing.assert_allclose(w.numpy(), [1, 1])


def test_famo_weights_equalise_log_loss_rates():
    # equal logits: c_i proportional to 1 / L_i -> (2/3, 1/3) of K = 2
    out = gm.famo_weights(f32([0, 0]), f32([1.0, 2.0]), ALL)
    np.testing.assert_allclose(out.coefficients.numpy(), [4 / 3, 2 / 3], rtol=1e-6)
    np.testing.assert_allclose(out.heads.numpy(), [4 / 3, 2 / 3], rtol=1e-6)


def test_famo_update_lowers_the_logit_of_the_task_that_improved_more():
    logits, m, v = gm.famo_update(f32([0, 0]), f32([0, 0]), f32([0, 0]), tf.constant(1.0),
                                  before=f32([1.0, 1.0]), after=f32([0.5, 0.99]), present=ALL)
    assert logits.numpy()[0] < 0 < logits.numpy()[1]


def call(method, G, present):
    fn = getattr(gm, method)
    out = fn(G, present, SEED) if method in ("pcgrad", "rlw") else fn(G, present)
    return out[0] if method == "nash_mtl" else out


@pytest.mark.parametrize("method", ["pcgrad", "cagrad", "imtl", "nash_mtl", "rlw"])
def test_methods_agree_with_the_sum_on_identical_gradients(method):
    """Two identical tasks: no conflict, every method's direction is along the common gradient."""
    G = f32([[1, 2], [1, 2]]) if method != "imtl" else f32([[1, 2], [1, 2.0001]])
    d = gm.direction(G, call(method, G, ALL)).numpy()
    cos = d @ np.array([1, 2]) / (np.linalg.norm(d) * np.sqrt(5))
    assert cos == pytest.approx(1.0, abs=1e-3)


def test_methods_run_inside_a_tf_function():
    G = f32([[1, 0, 2], [-1, 1, 0], [0, -2, 1]])
    present = f32([1, 1, 1])
    for method in ("pcgrad", "cagrad", "imtl", "nash_mtl", "rlw"):
        eager, graph = call(method, G, present), tf.function(lambda m=method: call(m, G, present))()
        for e, g in itertools.zip_longest(eager, graph):
            np.testing.assert_allclose(e.numpy(), g.numpy(), rtol=1e-4, atol=1e-5, err_msg=method)
