"""Each gradient method (components/trainer/gradient_methods.py) on a case with a known answer."""
import itertools

import numpy as np
import pytest
import tensorflow as tf

from components.trainer import gradient_methods as gm

SEED = tf.constant([1, 2])
ALL = tf.constant([1.0, 1.0])


def f32(x):
    return tf.constant(np.asarray(x, np.float32))


def test_pcgrad_projects_conflicts_exactly():
    # g1 . g2 = -1 < 0: g1' = g1 - (-1 / 2) g2 = (0.5, 0.5); g2' = g2 - (-1 / 1) g1 = (0, 1)
    d, w = gm.pcgrad(f32([[1, 0], [-1, 1]]), ALL, SEED)
    np.testing.assert_allclose(d.numpy(), [0.5, 1.5], atol=1e-6)
    np.testing.assert_array_equal(w.numpy(), [1, 1])
    # the projected g1' is orthogonal to g2 (the surgery's defining property)
    np.testing.assert_allclose(np.dot([0.5, 0.5], [-1, 1]), 0.0)


def test_pcgrad_leaves_agreeing_gradients_and_absent_tasks_alone():
    d, _ = gm.pcgrad(f32([[1, 0], [1, 1]]), ALL, SEED)
    np.testing.assert_allclose(d.numpy(), [2, 1], atol=1e-6)
    # task 2 absent: it neither projects task 1 nor counts in the sum
    d, w = gm.pcgrad(f32([[1, 0], [-5, 1]]), f32([1, 0]), SEED)
    np.testing.assert_allclose(d.numpy(), [1, 0], atol=1e-6)
    np.testing.assert_array_equal(w.numpy(), [1, 0])


def test_pcgrad_two_conflicting_quadratics_reach_the_pareto_set():
    """L1 = |x - a|^2, L2 = |x - b|^2: PCGrad steps from x0 end on the segment [a, b]."""
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    x = np.array([3.0, -2.0])
    for step in range(200):
        G = f32([2 * (x - a), 2 * (x - b)])
        d, _ = gm.pcgrad(G, ALL, SEED + step)
        x = x - 0.05 * d.numpy()
    t = np.dot(x - a, b - a) / np.dot(b - a, b - a)
    np.testing.assert_allclose(x, a + np.clip(t, 0, 1) * (b - a), atol=1e-3)


def test_cagrad_with_c_zero_is_the_sum():
    G = f32([[1, 0], [-1, 2]])
    d, _ = gm.cagrad(G, ALL, c=0.0)
    np.testing.assert_allclose(d.numpy(), [0, 2], atol=1e-5)


def test_cagrad_weights_are_the_simplex_minimum():
    G = np.array([[2.0, 0.0], [-1.0, 1.0]], np.float32)
    c = 0.5
    _, w = gm.cagrad(f32(G), ALL, c=c)
    g0 = G.mean(0)
    phi = c ** 2 * np.dot(g0, g0)

    def objective(p):
        wv = np.array([p, 1 - p])
        return wv @ G @ g0 + np.sqrt(phi) * np.linalg.norm(wv @ G)

    grid = np.linspace(0, 1, 20001)
    best = min(objective(p) for p in grid)
    found = objective(w.numpy()[0] / 2)  # weights are returned times K = 2
    assert found == pytest.approx(best, abs=1e-4 * abs(best))


def test_cagrad_improves_the_worst_task_more_than_the_mean():
    G = np.array([[4.0, 0.0], [-1.0, 0.5]], np.float32)
    d, _ = gm.cagrad(f32(G), ALL, c=0.5)
    worst = lambda v: min(G @ v)  # noqa: E731  first-order decrease of the worst task
    assert worst(d.numpy()) > worst(G.sum(0))


def test_imtl_projections_are_equal():
    G = np.array([[3.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, -2.0, 0.5]], np.float32)
    d, w = gm.imtl(f32(G), f32([1, 1, 1]))
    u = G / np.linalg.norm(G, axis=1, keepdims=True)
    proj = u @ d.numpy()
    np.testing.assert_allclose(proj, proj[0], rtol=1e-4)
    assert w.numpy().sum() == pytest.approx(3.0, rel=1e-5)  # alpha sums to 1, times K


def test_imtl_skips_an_absent_task():
    G = np.array([[2.0, 0.0], [0.0, 0.0], [0.0, 4.0]], np.float32)
    d, w = gm.imtl(f32(G), f32([1, 0, 1]))
    assert w.numpy()[1] == 0
    # two orthogonal gradients: equal projections on both unit vectors, weights sum to 2
    np.testing.assert_allclose(d.numpy()[0], d.numpy()[1], rtol=1e-5)
    assert w.numpy().sum() == pytest.approx(2.0, rel=1e-5)


def test_nash_mtl_orthogonal_gradients_get_inverse_norm_weights():
    # M = diag(4, 16): (M alpha)_i = 1 / alpha_i -> alpha = (1/2, 1/4), d = (1, 1)
    d, w, fallback = gm.nash_mtl(f32([[2, 0], [0, 4]]), ALL)
    np.testing.assert_allclose(w.numpy(), [0.5, 0.25], rtol=1e-4)
    np.testing.assert_allclose(d.numpy(), [1, 1], rtol=1e-4)
    assert float(fallback) == 0.0


def test_nash_mtl_solves_the_bargaining_equation():
    G = np.array([[1.0, 0.5, 0.0], [0.2, 1.0, -0.3], [0.0, 0.1, 2.0]], np.float32)
    _, w, fallback = gm.nash_mtl(f32(G), f32([1, 1, 1]))
    a = w.numpy()
    np.testing.assert_allclose(G @ G.T @ a, 1 / a, rtol=1e-3)
    assert float(fallback) == 0.0


@pytest.mark.parametrize("G, weight", [([[1, 0], [0, 0]], np.sqrt(2.0)), ([[3, 0], [0, 0]], np.sqrt(2.0) / 3),
                                       ([[1, 0], [np.nan, 1]], 1.0)])
def test_nash_mtl_falls_back_to_equal_weights_of_a_solutions_size(G, weight):
    # A zero gradient row has no solution (its alpha runs off to infinity); NaN none either. The
    # equal weights are sqrt(K / sum |g_i|^2): 3x the gradient, a third of the weight, as a
    # solution's alpha ~ 1 / |g| would be (with NaN, G G^T is replaced by the identity: weight 1).
    d, w, fallback = gm.nash_mtl(f32(G), ALL)
    assert float(fallback) == 1.0
    np.testing.assert_allclose(w.numpy(), [weight, weight], rtol=1e-5)


def test_rlw_weights_are_a_scaled_softmax_of_normal_draws():
    d, w = gm.rlw(f32([[1, 0], [0, 1]]), ALL, SEED)
    z = tf.random.stateless_normal([2], seed=SEED).numpy()
    expected = 2 * np.exp(z) / np.exp(z).sum()
    np.testing.assert_allclose(w.numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(d.numpy(), expected, rtol=1e-5)
    _, w = gm.rlw(f32([[1, 0], [0, 1]]), f32([0, 1]), SEED)
    np.testing.assert_allclose(w.numpy(), [0, 1], rtol=1e-6)


def test_gradnorm_moves_weight_to_the_slower_task():
    # equal gradient norms, task 2's loss fell less (ratio 1.0 vs 0.5): it gets more weight
    w = gm.gradnorm_update(f32([1, 1]), norms=f32([1, 1]), losses=f32([0.5, 1.0]), initial=f32([1, 1]),
                           present=ALL, alpha=1.5, lr=0.1)
    assert w.numpy()[1] > 1 > w.numpy()[0]
    assert w.numpy().sum() == pytest.approx(2.0)
    # at balance (equal norms, equal rates) nothing moves... up to the sign at exactly 0
    w = gm.gradnorm_update(f32([1, 1]), f32([1, 1]), f32([1, 1]), f32([1, 1]), ALL, alpha=1.5, lr=0.1)
    np.testing.assert_allclose(w.numpy(), [1, 1])


def test_famo_weights_equalise_log_loss_rates():
    # equal logits: c_i proportional to 1 / L_i -> (2/3, 1/3) of K = 2
    c = gm.famo_weights(f32([0, 0]), f32([1.0, 2.0]), ALL)
    np.testing.assert_allclose(c.numpy(), [4 / 3, 2 / 3], rtol=1e-6)


def test_famo_update_lowers_the_logit_of_the_task_that_improved_more():
    logits, m, v = gm.famo_update(f32([0, 0]), f32([0, 0]), f32([0, 0]), tf.constant(1.0),
                                  before=f32([1.0, 1.0]), after=f32([0.5, 0.99]), present=ALL)
    assert logits.numpy()[0] < 0 < logits.numpy()[1]


@pytest.mark.parametrize("method", ["pcgrad", "cagrad", "imtl", "nash_mtl", "rlw"])
def test_methods_agree_with_the_sum_on_identical_gradients(method):
    """Two identical tasks: no conflict, every method's direction is along the common gradient."""
    G = f32([[1, 2], [1, 2]]) if method != "nash_mtl" else f32([[1, 2], [1, 2.0001]])
    fn = getattr(gm, method)
    out = fn(G, ALL, SEED) if method in ("pcgrad", "rlw") else fn(G, ALL)
    d = out[0].numpy()
    cos = d @ np.array([1, 2]) / (np.linalg.norm(d) * np.sqrt(5))
    assert cos == pytest.approx(1.0, abs=1e-3)


def test_methods_run_inside_a_tf_function():
    G = f32([[1, 0, 2], [-1, 1, 0], [0, -2, 1]])
    present = f32([1, 1, 1])
    for name, fn in [("pcgrad", lambda: gm.pcgrad(G, present, SEED)), ("cagrad", lambda: gm.cagrad(G, present)),
                     ("imtl", lambda: gm.imtl(G, present)), ("nash", lambda: gm.nash_mtl(G, present)),
                     ("rlw", lambda: gm.rlw(G, present, SEED))]:
        eager, graph = fn(), tf.function(fn)()
        for e, g in itertools.zip_longest(eager, graph):
            np.testing.assert_allclose(e.numpy(), g.numpy(), rtol=1e-4, atol=1e-5, err_msg=name)
