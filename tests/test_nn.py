"""Tests for course_lib.nn: backprop against finite differences, determinism, initialisation,
training, the recording hooks, dead_fraction, backward_from/apply_gradients and
normal_moment."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from sklearn.datasets import make_moons

from course_lib import activations as act
from course_lib import nn
from course_lib.nn import MLP, dead_fraction, init_weights, silent_fraction

# Central differences: truncation error ~ h^2 |J'''| / 6 ~ 1e-13 and rounding error
# ~ eps |J| / h ~ 2e-10 for a cost J of order 1, so atol = 1e-8 leaves a 50x margin.
H = 1e-6
ATOL = 1e-8
RTOL = 1e-6


def numerical_grad(cost: Callable[[], float], param: np.ndarray, h: float = H) -> np.ndarray:
    """(J(p + h e_i) - J(p - h e_i)) / 2h for every entry i of ``param``, perturbed in place."""
    grad = np.zeros(param.shape)
    for i in np.ndindex(param.shape):
        saved = param[i].copy()
        param[i] = saved + h
        up = cost()
        param[i] = saved - h
        down = cost()
        param[i] = saved
        grad[i] = (up - down) / (2 * h)
    return grad


def make_targets(loss: str, n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Targets in the form each loss expects (notation.md: labels 0/1, hinge -1/+1)."""
    if loss in ("mse", "mae", "huber"):
        return rng.normal(size=(n, k))
    if loss == "hinge":
        return rng.choice([-1.0, 1.0], size=n)
    labels = rng.integers(0, max(k, 2), size=n)
    if loss == "sparse_categorical_cross_entropy" or k == 1:
        return labels
    return np.eye(k)[labels]


# (hidden activation(s), output activation, loss, d_out): every course activation appears in a
# hidden layer, every loss an MLP can train appears once, PReLU with one slope and one per unit.
GRADCHECK_CASES = [
    ("tanh", "identity", "mse", 2),
    ("relu", "identity", "binary_cross_entropy_with_logits", 1),
    (("leaky_relu", {"alpha": 0.1}), "sigmoid", "binary_cross_entropy", 1),
    (("prelu", {"alpha": 0.2}), "identity", "mse", 2),
    (("prelu", {"alpha": 0.2, "per_unit": True}), "identity", ("huber", {"delta": 0.5}), 2),
    (("elu", {"alpha": 1.5}), "identity", "softmax_cross_entropy", 3),
    ("selu", "identity", "sparse_categorical_cross_entropy", 3),
    ("gelu", "identity", "hinge", 1),
    (("swish", {"beta": 1.5}), "sigmoid", ("focal_loss", {"alpha": 0.25, "gamma": 2.0}), 1),
    ("mish", "softmax", "categorical_cross_entropy", 3),
    ("sigmoid", "identity", "mae", 1),
    (["lisht", "softplus"], "identity", "mse", 1),
    (["identity", ("prelu", {"per_unit": True})], ("prelu", {"alpha": 0.3}), "mse", 2),
]


@pytest.mark.parametrize(("hidden", "output", "loss", "k"), GRADCHECK_CASES, ids=repr)
def test_backprop_matches_finite_differences(hidden, output, loss, k):
    """Check every parameter gradient (W, b and PReLU's alpha) against central differences."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(8, 3))
    loss_name = loss if isinstance(loss, str) else loss[0]
    y = make_targets(loss_name, 8, k, rng)
    model = MLP([3, 5, 4, k], hidden, output, loss, init="xavier", seed=1)
    model.cost(X, y)
    model.backward(y)
    analytic = [g.copy() for g in model.gradients()]
    names = [
        f"layer {i} {key}" for i, layer in enumerate(model.layers) for key in layer.parameters()
    ]
    for name, param, grad in zip(names, model.parameters(), analytic, strict=True):
        numeric = numerical_grad(lambda: model.cost(X, y), param)
        np.testing.assert_allclose(
            grad,
            numeric,
            rtol=RTOL,
            atol=ATOL,
            err_msg=f"{name} of {model!r}: backprop disagrees with central differences; "
            "check the activation's _grad, the loss's _grad (1/N included?) or the chain rule",
        )


def test_prelu_alpha_is_learned():
    """Check that fit moves PReLU's slope, one per layer and one per unit as asked."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 2))
    y = X[:, :1] - np.abs(X[:, 1:])  # a target that needs negative slopes
    model = MLP([2, 8, 8, 1], [("prelu", {"alpha": 0.25}), ("prelu", {"per_unit": True})], seed=0)
    assert model.layers[0].alpha.shape == (), "a layer-wide PReLU slope should be 0-d"
    assert model.layers[1].alpha.shape == (8,), "per_unit=True should give one slope per unit"
    before = [layer.alpha.copy() for layer in model.layers[:2]]
    model.fit(X, y, epochs=5, batch_size=16, lr=0.05, momentum=0.9, seed=0)
    for i, start in enumerate(before):
        assert np.all(model.layers[i].alpha != start), f"alpha of layer {i} did not move"


def test_same_seed_gives_same_weights_and_history():
    """Check that the seed fixes the weights and, with the shuffle seed, the whole training."""
    X, y = make_moons(n_samples=64, noise=0.1, random_state=0)

    def train(seed: int, shuffle_seed: int) -> tuple[MLP, dict[str, list[float]]]:
        model = MLP([2, 8, 1], "tanh", loss="binary_cross_entropy_with_logits", seed=seed)
        return model, model.fit(X, y, epochs=3, batch_size=16, seed=shuffle_seed)

    first, history = train(3, 1)
    second, same_history = train(3, 1)
    # Exact equality holds by construction: the same draws and the same operations in order.
    for p, q in zip(first.parameters(), second.parameters(), strict=True):
        np.testing.assert_array_equal(p, q)
    assert history == same_history
    assert train(3, 2)[1] != history, "the shuffle seed should change the batches"
    other_seed = MLP([2, 8, 1], "tanh", seed=4).layers[0].W
    assert not np.array_equal(other_seed, MLP([2, 8, 1], "tanh", seed=3).layers[0].W)


# Variance of each scheme: He 2/n_in, Glorot 2/(n_in + n_out) (uniform on [-l, l] has variance
# l^2/3 with l^2 = 6/(n_in + n_out)), LeCun 1/n_in.
INIT_VARIANCES = {
    "he": lambda fan_in, fan_out: 2 / fan_in,
    "xavier": lambda fan_in, fan_out: 2 / (fan_in + fan_out),
    "xavier_normal": lambda fan_in, fan_out: 2 / (fan_in + fan_out),
    "lecun": lambda fan_in, fan_out: 1 / fan_in,
}


@pytest.mark.parametrize("init", sorted(INIT_VARIANCES))
def test_init_variance_within_sampling_error(init):
    """Check mean(W) = 0 and mean(W^2) = the scheme's variance, within 5 standard errors."""
    fan_in, fan_out = 400, 300
    W = init_weights(fan_in, fan_out, init, np.random.default_rng(0))
    n = W.size
    var = INIT_VARIANCES[init](fan_in, fan_out)
    # mean(W^2) estimates the variance (the mean is known to be 0) with standard deviation
    # sqrt((mu4 - var^2) / n), where mu4 / var^2 is 3 for a normal and 9/5 for a uniform:
    #   sympy: l, w = symbols("l w", positive=True)
    #          integrate(w**4 / (2*l), (w, -l, l)) / integrate(w**2 / (2*l), (w, -l, l))**2 -> 9/5
    kurtosis = 9 / 5 if init == "xavier" else 3
    se_var = var * np.sqrt((kurtosis - 1) / n)
    assert abs(np.mean(W**2) - var) < 5 * se_var, (
        f"{init}: std {np.sqrt(np.mean(W**2)):.5f}, expected {np.sqrt(var):.5f}"
    )
    assert abs(W.mean()) < 5 * np.sqrt(var / n), f"{init}: mean {W.mean():.2e}, expected 0"
    if init == "xavier":
        assert np.abs(W).max() <= np.sqrt(6 / (fan_in + fan_out)), "Glorot uniform out of [-l, l]"


def test_mlp_draws_layers_in_order_from_the_seed_and_zeroes_biases():
    """Check that MLP's weights are init_weights' draws from default_rng(seed), biases 0."""
    model = MLP([5, 7, 3], "selu", init="lecun", seed=11)
    rng = np.random.default_rng(11)
    for layer, (fan_in, fan_out) in zip(model.layers, [(5, 7), (7, 3)], strict=True):
        np.testing.assert_array_equal(layer.W, init_weights(fan_in, fan_out, "lecun", rng))
        np.testing.assert_array_equal(layer.b, np.zeros(fan_out))


def test_learns_make_moons():
    """Check that a ReLU net with BCE on logits separates make_moons (> 95% accuracy)."""
    X, y = make_moons(n_samples=200, noise=0.1, random_state=0)
    model = MLP([2, 16, 16, 1], "relu", loss="binary_cross_entropy_with_logits", seed=0)
    history = model.fit(X, y, epochs=100, batch_size=32, lr=0.1, momentum=0.9, seed=0)
    assert len(history["cost"]) == len(history["accuracy"]) == 100
    assert history["cost"][-1] < history["cost"][0], "the cost should fall during training"
    assert history["accuracy"][-1] > 0.95, f"accuracy {history['accuracy'][-1]:.3f} on moons"
    assert model.accuracy(X, y) == history["accuracy"][-1]


def test_learns_xor_with_hinge_loss():
    """Check that a tanh net with the hinge loss (labels -1/+1) learns XOR exactly."""
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = np.array([-1.0, 1.0, 1.0, -1.0])
    model = MLP([2, 8, 1], "tanh", loss="hinge", init="xavier", seed=0)
    history = model.fit(X, y, epochs=300, batch_size=None, lr=0.1, momentum=0.9)
    assert history["accuracy"][-1] == 1.0, f"XOR accuracy {history['accuracy'][-1]}"
    np.testing.assert_array_equal(model.classify(X), y)


def test_labels_and_one_hot_rows_are_the_same_targets():
    """Check that integer labels are one-hot encoded for softmax cross-entropy, not misread."""
    rng = np.random.default_rng(0)
    X, labels = rng.normal(size=(20, 3)), rng.integers(0, 4, size=20)
    model = MLP([3, 6, 4], "gelu", loss="softmax_cross_entropy", seed=0)
    one_hot = np.eye(4)[labels]
    # The labels are turned into this very array, so the costs agree exactly.
    assert model.cost(X, labels) == model.cost(X, one_hot)
    assert model.accuracy(X, labels) == model.accuracy(X, one_hot)
    np.testing.assert_array_equal(model.classify(X), model.predict(X).argmax(axis=1))


@pytest.mark.parametrize(
    ("output", "loss", "expected"),
    [
        ("sigmoid", "binary_cross_entropy", [0, 0, 1, 1]),  # sigmoid(z) > 0.5 iff z > 0
        ("identity", "binary_cross_entropy_with_logits", [0, 0, 1, 1]),  # logits: z > 0
        ("identity", "hinge", [-1, -1, 1, 1]),  # hinge labels are -1/+1
    ],
)
def test_classify_thresholds_probabilities_at_half_and_scores_at_zero(output, loss, expected):
    """Check classify on a one-unit net y_pred = f(x): probabilities vs logits vs hinge scores."""
    model = MLP([1, 1], output_activation=output, loss=loss)
    model.layers[0].W[:] = 1.0  # z = x exactly
    X = np.array([[-3.0], [-0.2], [0.2], [3.0]])
    np.testing.assert_array_equal(model.classify(X), expected)


def test_records_and_grad_norms_have_the_right_shapes():
    """Check forward(record=True) fills one record per layer and backward one norm row per step."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(11, 3)), rng.normal(size=(11, 2))
    model = MLP([3, 7, 5, 2], ["relu", "selu"], seed=0)
    model.forward(X, record=True)
    assert len(model.records) == 3
    for record, width in zip(model.records, [7, 5, 2], strict=True):
        assert record["z"].shape == record["a"].shape == (11, width)
        # Same expressions as in nn.py, so equal by construction.
        assert record["mean"] == float(record["a"].mean())
        assert record["std"] == float(record["a"].std())
        assert record["zero_fraction"] == float(np.mean(record["a"] == 0))
        assert 0.0 <= record["dead_fraction"] <= record["zero_fraction"] <= 1.0
    kept = model.records
    model.forward(X)
    assert model.records is kept, "forward without record=True should leave records alone"
    for _ in range(3):
        model.step(X, y, lr=0.01, momentum=0.9)
    assert len(model.grad_norms) == 3
    assert all(row.shape == (3,) and np.all(row > 0) for row in model.grad_norms)
    last = [np.linalg.norm(layer.grads["W"]) for layer in model.layers]
    np.testing.assert_array_equal(model.grad_norms[-1], last)


def test_dead_fraction_is_one_when_biases_are_very_negative():
    """Check dead_fraction = 1 when every hidden pre-activation is negative on every input."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(50, 2))
    model = MLP([2, 6, 5, 1], "relu", loss="binary_cross_entropy_with_logits", seed=0)
    for layer in model.layers[:-1]:
        layer.b[:] = -100.0  # |x W| < 10 here, so z < 0 on every sample
    assert dead_fraction(model, X) == 1.0
    model.forward(X, record=True)
    assert [r["dead_fraction"] for r in model.records[:-1]] == [1.0, 1.0]


def test_dead_fraction_counts_units_not_samples():
    """Check dead_fraction = 1/4 when exactly one of four ReLU units is off on every sample."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 2))
    model = MLP([2, 4, 1], "relu", seed=0)
    model.layers[0].W[:] = np.array([[1.0, 1.0, -1.0, 0.5], [0.0, -1.0, 1.0, 2.0]])
    model.layers[0].b[:] = [-100.0, 0.0, 0.0, 0.0]  # only unit 0 is dead; the others split X
    assert dead_fraction(model, X) == 0.25
    with pytest.raises(ValueError, match="no hidden ReLU"):
        dead_fraction(MLP([2, 4, 1], "tanh"), X)


def test_selu_keeps_mean_zero_and_std_one_across_32_layers():
    """Check SELU's self-normalisation: after 32 layers (LeCun init), mean ~ 0 and std ~ 1."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 100))
    model = MLP([100] + [100] * 32 + [1], "selu", init="lecun", seed=0)
    model.forward(X, record=True)
    last_hidden = model.records[-2]
    # (0, 1) is the fixed point SELU's constants were chosen for (Klambauer et al. 2017);
    # measured here: mean -0.015, std 0.989. tanh in the same net falls to std 0.11.
    assert abs(last_hidden["mean"]) < 0.1, f"mean {last_hidden['mean']:.3f}"
    assert abs(last_hidden["std"] - 1) < 0.1, f"std {last_hidden['std']:.3f}"


def test_sigmoid_gradients_vanish_towards_the_input():
    """Check that in a deep sigmoid net ||dJ/dW|| grows from the first layer to the last."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(64, 10)), rng.normal(size=64)
    model = MLP([10] + [32] * 8 + [1], "sigmoid", init="xavier", seed=0)
    model.cost(X, y)
    model.backward(y)
    norms = model.grad_norms[-1]
    # Each sigmoid layer multiplies the backward signal by f'(z) <= 1/4; measured ratio ~1e-4.
    assert np.all(np.diff(norms) > 0), f"norms not increasing: {norms}"
    assert norms[0] < 1e-2 * norms[-2], f"first {norms[0]:.2e} vs last hidden {norms[-2]:.2e}"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"activation": "relux"}, "unknown activation 'relux'"),
        ({"loss": "msee"}, "unknown loss 'msee'"),
        ({"activation": ["relu"]}, "1 activations for 2 hidden layers"),
        ({"loss": "binary_cross_entropy"}, "takes probabilities"),
        ({"loss": "softmax_cross_entropy", "output_activation": "softmax"}, "takes logits"),
        ({"init": "glorot"}, "unknown init 'glorot'"),
    ],
)
def test_bad_configurations_raise_a_helpful_error(kwargs, message):
    """Check that a misspelt name or a loss/output mismatch is refused with a clear message."""
    with pytest.raises(ValueError, match=message):
        MLP([2, 4, 4, 1], **kwargs)


def test_fit_callback_and_silent_fraction():
    """fit calls the callback once per epoch; silent_fraction counts units with z <= 0 always."""
    X, y = make_moons(n_samples=64, noise=0.1, random_state=0)
    model = MLP([2, 8, 1], "leaky_relu", loss="binary_cross_entropy_with_logits", seed=0)
    epochs_seen = []
    model.fit(X, y, epochs=3, callback=lambda m, epoch: epochs_seen.append(epoch))
    assert epochs_seen == [0, 1, 2]
    model.layers[0].b[:] = -100.0  # every hidden pre-activation negative on this data
    assert silent_fraction(model, X) == 1.0
    model.layers[0].b[:4] = 100.0  # half of the 8 units now always positive
    assert silent_fraction(model, X) == 0.5


# ------------------------------------------------------------- backward_from, apply_gradients


def test_backward_from_the_loss_gradient_is_backward():
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(16, 3)), (rng.random(16) < 0.5).astype(float)
    spec = dict(sizes=[3, 5, 1], activation="tanh", loss="binary_cross_entropy_with_logits")
    one, other = MLP(**spec, seed=1), MLP(**spec, seed=1)
    one.forward(X)
    one.backward(y)
    y_hat = other.forward(X)
    other.backward_from(other.loss_grad(y[:, None], y_hat))
    for g_one, g_other in zip(one.gradients(), other.gradients(), strict=True):
        np.testing.assert_array_equal(g_one, g_other)
    np.testing.assert_array_equal(one.grad_norms[-1], other.grad_norms[-1])


def test_backward_from_an_outside_cost_matches_finite_differences():
    # J = mean of the squared norms of the outputs: a cost the model does not know.
    rng = np.random.default_rng(4)
    X = rng.normal(size=(6, 3))
    model = MLP([3, 4, 2], activation="gelu", seed=2)

    def outside_cost() -> float:
        return float(np.mean(np.sum(model.forward(X) ** 2, axis=1)))

    out = model.forward(X)
    model.backward_from(2 * out / len(X))  # dJ/d(out) of the mean of squared norms
    for param, grad in zip(model.parameters(), model.gradients(), strict=True):
        np.testing.assert_allclose(grad, numerical_grad(outside_cost, param), rtol=RTOL, atol=ATOL)


def test_apply_gradients_is_the_update_of_step():
    rng = np.random.default_rng(5)
    X, y = rng.normal(size=(10, 2)), rng.normal(size=(10, 1))
    stepped, applied = MLP([2, 3, 1], seed=0), MLP([2, 3, 1], seed=0)
    for _ in range(3):  # three steps, so that the velocities matter
        stepped.step(X, y, lr=0.05, momentum=0.8)
        applied.forward(X)
        applied.backward(y)
        applied.apply_gradients(lr=0.05, momentum=0.8)
    for p_step, p_apply in zip(stepped.parameters(), applied.parameters(), strict=True):
        np.testing.assert_array_equal(p_step, p_apply)


def test_backward_from_and_apply_gradients_say_what_is_wrong():
    model = MLP([2, 3, 2], seed=0)
    with pytest.raises(RuntimeError, match="call backward or backward_from first"):
        model.apply_gradients()
    model.forward(np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"da has shape \(4, 1\); the last forward output has"):
        model.backward_from(np.zeros((4, 1)))


# ------------------------------------------------------------------------------ normal_moment

SQRT_2PI = np.sqrt(2 * np.pi)


@pytest.mark.parametrize(
    ("f", "k", "params", "exact"),
    [
        # E[max(0, Z)] = phi(0) = 1/sqrt(2 pi); E[max(0, Z)^2] = 1/2 (half of E[Z^2]).
        (act.relu, 1, {}, 1 / SQRT_2PI),
        (act.relu, 2, {}, 0.5),
        # Odd function: 0. sigmoid(-t) = 1 - sigmoid(t): 1/2.
        (act.tanh, 1, {}, 0.0),
        (act.sigmoid, 1, {}, 0.5),
        # E[Z Phi(Z)] = E[phi(Z)] (Stein) = 1/(2 sqrt(pi)) = 0.28209479177387814.
        (act.gelu, 1, {}, 1 / (2 * np.sqrt(np.pi))),
        # mpmath, mp.dps = 30: phi = lambda t: mp.exp(-t*t/2)/mp.sqrt(2*mp.pi)
        # mp.quad(lambda t: t/(1+mp.exp(-t))*phi(t), [-mp.inf, 0, mp.inf])
        (act.silu, 1, {}, 0.20662096414190704),
        # mp.quad(lambda t: t*mp.tanh(mp.log1p(mp.exp(t)))*phi(t), [-mp.inf, 0, mp.inf])
        (act.mish, 1, {}, 0.24040388837479144),
        # mp.quad(lambda t: (t if t > 0 else 2*(mp.exp(t)-1))*phi(t), [-mp.inf, 0, mp.inf])
        (act.elu, 1, {"alpha": 2.0}, -0.077901135868320579),
        # SELU's constants are chosen so that N(0, 1) in gives mean 0 and second moment 1 out.
        (act.selu, 1, {}, 0.0),
        (act.selu, 2, {}, 1.0),
    ],
)
def test_normal_moment_against_closed_forms_and_mpmath(f, k, params, exact):
    got = nn.normal_moment(f, k, **params)
    assert got == pytest.approx(exact, rel=1e-13, abs=1e-14)


def test_normal_moment_gives_he_gain_for_relu():
    # He et al.: Var W = 1 / (n_in E[relu(Z)^2]) = 2 / n_in.
    assert 1 / nn.normal_moment(act.relu, 2) == pytest.approx(2.0, rel=1e-14)
