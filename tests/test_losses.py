"""Tests for course_lib.losses: mpmath values, properties, gradients, edge cases, errors.

Every literal expected value carries the mpmath snippet that reproduces it. The snippets
assume ``from mpmath import mp, mpf, log, exp`` and start with ``mp.dps = 50``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from course_lib import losses

EPS = np.finfo(np.float64).eps
FEW = settings(max_examples=30, deadline=None)
ALL_LOSSES = sorted(losses.LOSSES)


def central_diff(loss, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """d loss / d x_i by central differences, one entry at a time (loss returns a float)."""
    x = np.array(x, dtype=np.float64)
    grad = np.empty_like(x)
    for i in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[i] += h * max(1.0, abs(x[i]))
        down[i] -= h * max(1.0, abs(x[i]))
        grad[i] = (loss(up) - loss(down)) / (up[i] - down[i])
    return grad


# Which positional arguments are predictions (the ones the gradient is taken against).
PREDICTIONS = {"triplet_loss": (0, 1, 2)}


def make_case(name: str, rng: np.random.Generator, scale: float = 1.0) -> tuple:
    """Valid random arguments for loss ``name``, away from kinks and from the clipping."""
    n, k = 5, 4
    if name in ("mse", "mae", "huber"):
        return rng.normal(size=(n, 3)) * scale, rng.normal(size=(n, 3)) * scale
    if name == "binary_cross_entropy":
        return rng.uniform(size=n), rng.uniform(0.05, 0.95, size=n)
    if name == "binary_cross_entropy_with_logits":
        return rng.uniform(size=n), rng.normal(size=n) * 3 * scale
    if name == "categorical_cross_entropy":
        return rng.dirichlet(np.ones(k), size=n), rng.dirichlet(np.full(k, 5.0), size=n)
    if name == "softmax_cross_entropy":
        return rng.dirichlet(np.ones(k), size=n), rng.normal(size=(n, k)) * 3 * scale
    if name == "sparse_categorical_cross_entropy":
        return rng.integers(0, k, size=n), rng.normal(size=(n, k)) * 3 * scale
    if name == "focal_loss":
        return rng.integers(0, 2, size=n), rng.uniform(0.05, 0.95, size=n)
    if name == "focal_loss_with_logits":
        return rng.integers(0, 2, size=n), rng.normal(size=n) * 3 * scale
    if name == "hinge":
        return rng.choice([-1.0, 1.0], size=n), rng.normal(size=n) * 2 * scale
    if name == "contrastive_loss":
        return rng.integers(0, 2, size=n), rng.uniform(0.0, 2.0, size=n) * scale
    if name == "triplet_loss":
        return tuple(rng.normal(size=(n, 3)) * scale for _ in range(3))
    if name == "next_token_loss":
        return rng.integers(0, k, size=(2, 4)), rng.normal(size=(2, 4, k)) * 3 * scale
    if name == "masked_lm_loss":
        labels = np.where(rng.uniform(size=(2, 4)) < 0.5, -100, rng.integers(0, k, size=(2, 4)))
        labels[0, 0] = 1  # at least one scored position
        return labels, rng.normal(size=(2, 4, k)) * 3 * scale
    raise KeyError(name)


def call_grad(name: str, args: tuple) -> tuple[np.ndarray, ...]:
    """The gradient(s) of loss ``name`` as a tuple (triplet_loss_grad already returns one)."""
    grad = losses.LOSS_GRADIENTS[name + "_grad"](*args)
    return grad if isinstance(grad, tuple) else (grad,)


def no_warnings(fn, *args, **kwargs):
    """Call fn turning every warning into an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn(*args, **kwargs)


# ---------------------------------------------------------------------------- registries


def test_registries_pair_every_loss_with_its_gradient():
    """LOSSES and LOSS_GRADIENTS hold the 15 public losses, each with name + '_grad'."""
    assert len(losses.LOSSES) == 15
    assert set(losses.LOSS_GRADIENTS) == {name + "_grad" for name in losses.LOSSES}
    for name, fn in losses.LOSSES.items():
        assert fn is getattr(losses, name)
        assert losses.LOSS_GRADIENTS[name + "_grad"] is getattr(losses, name + "_grad")


# -------------------------------------------------------------------------- fixed values

FIXED = [
    # mp.dps = 50; r = [mpf(0.25), mpf(-2.25), mpf(-0.5)]; float(sum(t**2 for t in r) / 3)
    (losses.mse, ([0.5, -1.25, 2.0], [0.25, 1.0, 2.5]), 1.7916666666666667),
    # mp.dps = 50; float((mpf(0.25) + mpf(2.25) + mpf(0.5)) / 3)
    (losses.mae, ([0.5, -1.25, 2.0], [0.25, 1.0, 2.5]), 1.0),
    # mp.dps = 50; float((mpf(0.25)**2 / 2 + (mpf(2.25) - mpf(0.5)) + mpf(0.5)**2 / 2) / 3)
    (losses.huber, ([0.5, -1.25, 2.0], [0.25, 1.0, 2.5]), 0.6354166666666666),
    # mp.dps = 50; y, p = [1, 0, mpf(0.25)], [mpf(0.9), mpf(0.2), mpf(0.6)]
    # float(sum(-(a * log(b) + (1 - a) * log(1 - b)) for a, b in zip(y, p)) / 3)
    (losses.binary_cross_entropy, ([1, 0, 0.25], [0.9, 0.2, 0.6]), 0.3811428406063833),
    # p = 0 for y = 1 is clipped to eps: mp.dps = 50; float(-log(mpf(1e-7)))
    (losses.binary_cross_entropy, ([1.0], [0.0]), 16.11809565095832),
    # mp.dps = 50; y, z = [1, 0, mpf(0.25)], [mpf(2.5), mpf(-1.5), mpf(0.75)]
    # sp = lambda t: log(1 + exp(t)); float(sum(a*sp(-b) + (1-a)*sp(b) for a, b in zip(y, z)) / 3)
    (
        losses.binary_cross_entropy_with_logits,
        ([1, 0, 0.25], [2.5, -1.5, 0.75]),
        0.4098913394634007,
    ),
    # a confident, correct logit keeps its digits: mp.dps = 50; float(log(1 + exp(-40)))
    (losses.binary_cross_entropy_with_logits, ([1.0], [40.0]), 4.248354255291589e-18),
    # mp.dps = 50; float(log(1 + exp(800)))
    (losses.binary_cross_entropy_with_logits, ([1.0], [-800.0]), 800.0),
    # mp.dps = 50; float((-log(mpf(0.7)) - mpf(0.25)*log(mpf(0.1)) - mpf(0.75)*log(mpf(0.6))) / 2)
    (
        losses.categorical_cross_entropy,
        ([[1, 0, 0], [0.25, 0.75, 0]], [[0.7, 0.2, 0.1], [0.1, 0.6, 0.3]]),
        0.6577202175058684,
    ),
    # mp.dps = 50; lse = lambda z: log(sum(exp(mpf(t)) for t in z))
    # float(((lse([1, 2, 3]) - 2) + (lse([-1, 0.5, 2]) - (-mpf(0.5) + mpf(0.125) + mpf(0.5)))) / 2)
    (
        losses.softmax_cross_entropy,
        ([[0, 1, 0], [0.5, 0.25, 0.25]], [[1, 2, 3], [-1, 0.5, 2]]),
        1.7619586305507686,
    ),
    # a confident, correct class keeps its digits: mp.dps = 50; float(log(1 + 2 * exp(-40)))
    (losses.softmax_cross_entropy, ([[1, 0, 0]], [[40, 0, 0]]), 8.496708510583178e-18),
    # mp.dps = 50; (lse as above) float(((lse([1, 2, 3]) - 3) + (lse([-1, 0.5, 2]) + 1)) / 2)
    (
        losses.sparse_categorical_cross_entropy,
        (np.array([2, 0]), [[1, 2, 3], [-1, 0.5, 2]]),
        1.8244586305507686,
    ),
    # mp.dps = 50; fl = lambda y, p: -mpf(0.25)*(1-p)**2*log(p) if y else -mpf(0.75)*p**2*log(1-p)
    # float(sum(fl(y, mpf(p)) for y, p in zip([1, 0, 1, 0], [0.9, 0.2, 0.3, 0.75])) / 4)
    (losses.focal_loss, ([1, 0, 1, 0], [0.9, 0.2, 0.3, 0.75]), 0.18482182748898798),
    # The textbook form at p = sigmoid(z), independent of the library's softplus form:
    # mp.dps = 50; sig = lambda t: 1 / (1 + exp(-t))
    # flz = lambda y, z, a=mpf(0.25), g=2: (-a * (1 - sig(z))**g * log(sig(z)) if y
    #                                       else -(1 - a) * sig(z)**g * log(1 - sig(z)))
    # float(sum(flz(y, mpf(z)) for y, z in zip([1, 0, 1, 0], [2.5, -1.5, -0.75, 3.0])) / 4)
    (
        losses.focal_loss_with_logits,
        ([1, 0, 1, 0], [2.5, -1.5, -0.75, 3.0]),
        0.5527389938892554,
    ),
    # an easy positive keeps its digits: mp.dps = 50; (flz as above) float(flz(1, mpf(40)))
    (losses.focal_loss_with_logits, ([1.0], [40.0]), 1.9169120184305e-53),
    # a confidently wrong positive, no clipping: mp.dps = 50; float(flz(1, mpf(-800)))
    (losses.focal_loss_with_logits, ([1.0], [-800.0]), 200.0),
    # margins 1 - y*s = [0.5, 1.5, -1, -2]: mp.dps = 50; float((mpf(0.5) + mpf(1.5)) / 4)
    (losses.hinge, ([1, -1, 1, -1], [0.5, 0.5, 2.0, -3.0]), 0.5),
    # mp.dps = 50; float((mpf(0.5)**2 / 2 + (1 - mpf(0.25))**2 / 2 + 0) / 3)
    (losses.contrastive_loss, ([1, 0, 0], [0.5, 0.25, 1.5]), 0.13541666666666666),
    # distances (5, 4.5) and (0, 0.5): mp.dps = 50; float(((5 - mpf(4.5) + 1) + (0 - mpf(0.5) + 1)) / 2)
    (
        losses.triplet_loss,
        ([[0.0, 0.0], [1.0, 1.0]], [[3.0, 4.0], [1.0, 1.0]], [[0.0, -4.5], [1.0, 1.5]]),
        1.0,
    ),
    # mp.dps = 50; (lse as above) float(((lse([1, 2, 3]) - 3) + (lse([0.5, -1, 0]) + 1)) / 2)
    (
        losses.next_token_loss,
        (np.array([[0, 2, 1]]), [[[1, 2, 3], [0.5, -1, 0], [9, 9, 9]]]),
        1.2558682848905542,
    ),
    # mp.dps = 50; (lse as above) float(lse([0.5, -1, 0]) + 1)
    (
        losses.masked_lm_loss,
        (np.array([[-100, 1, -100]]), [[[1, 2, 3], [0.5, -1, 0], [9, 9, 9]]]),
        2.1041306053367284,
    ),
]


@pytest.mark.parametrize(
    ("loss", "args", "expected"), FIXED, ids=lambda v: getattr(v, "__name__", "")
)
def test_loss_matches_mpmath(loss, args, expected):
    """Each loss agrees with an mpmath reference to a few ULP."""
    got = loss(*args)
    assert type(got) is float, f"{loss.__name__} returned {type(got).__name__}, expected float"
    assert got == pytest.approx(expected, rel=8 * EPS, abs=0), f"{loss.__name__}{args}"


FIXED_GRADS = [
    # mp.dps = 50; [float(2 * (b - a) / 3) for a, b in zip([0.5, -1.25, 2], [0.25, 1, 2.5])]
    (losses.mse_grad, ([0.5, -1.25, 2.0], [0.25, 1.0, 2.5]), [-1 / 6, 1.5, 0.3333333333333333]),
    # mp.dps = 50; y, p = [1, 0, mpf(0.25)], [mpf(0.9), mpf(0.2), mpf(0.6)]
    # [float((-a / b + (1 - a) / (1 - b)) / 3) for a, b in zip(y, p)]
    (
        losses.binary_cross_entropy_grad,
        ([1, 0, 0.25], [0.9, 0.2, 0.6]),
        [-0.37037037037037035, 0.4166666666666667, 0.48611111111111105],
    ),
    # mp.dps = 50; sig = lambda t: 1 / (1 + exp(-t))
    # [float((sig(b) - a) / 3) for a, b in zip([1, 0, mpf(0.25)], [mpf(2.5), mpf(-1.5), mpf(0.75)])]
    (
        losses.binary_cross_entropy_with_logits_grad,
        ([1, 0, 0.25], [2.5, -1.5, 0.75]),
        [-0.025286060007081185, 0.060808507935452116, 0.14305956639179765],
    ),
    # sigma(40) - 1 keeps its digits: mp.dps = 50; float(1 / (1 + exp(-40)) - 1)
    (losses.binary_cross_entropy_with_logits_grad, ([1.0], [40.0]), [-4.248354255291589e-18]),
    # Y, P (and Z below) are the arguments on the next lines, entries as mpf.
    # mp.dps = 50; [[float(-a / b / 2) for a, b in zip(y, p)] for y, p in zip(Y, P)]
    (
        losses.categorical_cross_entropy_grad,
        ([[1, 0, 0], [0.25, 0.75, 0]], [[0.7, 0.2, 0.1], [0.1, 0.6, 0.3]]),
        [[-0.7142857142857143, 0.0, 0.0], [-1.25, -0.625, 0.0]],
    ),
    # mp.dps = 50; sm = lambda z: [exp(mpf(t)) / sum(exp(mpf(s)) for s in z) for t in z]
    # [[float((q - a) / 2) for a, q in zip(y, sm(z))] for y, z in zip(Y, Z)]
    (
        losses.softmax_cross_entropy_grad,
        ([[0, 1, 0], [0.5, 0.25, 0.25]], [[1, 2, 3], [-1, 0.5, 2]]),
        [
            [0.04501528658519023, -0.37763576447260117, 0.33262047788741095],
            [-0.23044371336465627, -0.03735480392998165, 0.26779851729463794],
        ],
    ),
    # p_0 - 1 keeps its digits: mp.dps = 50; (sm as above) [float(q - a) for a, q in
    # zip([1, 0, 0], sm([40, 0, 0]))]
    (
        losses.softmax_cross_entropy_grad,
        ([[1, 0, 0]], [[40, 0, 0]]),
        [[-8.496708510583178e-18, 4.248354255291589e-18, 4.248354255291589e-18]],
    ),
    # mp.dps = 50; (sm as above) [[float((q - (k == c)) / 2) for k, q in enumerate(sm(z))]
    # for c, z in zip([2, 0], Z)]
    (
        losses.sparse_categorical_cross_entropy_grad,
        (np.array([2, 0]), [[1, 2, 3], [-1, 0.5, 2]]),
        [
            [0.04501528658519023, 0.12236423552739882, -0.16737952211258905],
            [-0.4804437133646563, 0.08764519607001835, 0.39279851729463794],
        ],
    ),
    # mp.dps = 50; (fl as in FIXED) [float(mp.diff(lambda t: fl(y, t), mpf(p)) / 4)
    # for y, p in zip([1, 0, 1, 0], [0.9, 0.2, 0.3, 0.75])]
    (
        losses.focal_loss_grad,
        ([1, 0, 1, 0], [0.9, 0.2, 0.3, 0.75]),
        [-0.0020114508901672725, 0.026110766348565736, -0.20743095371185274, 0.8117702890649693],
    ),
    # mp.dps = 50; (flz as in FIXED) [float(mp.diff(lambda t: flz(y, t), mpf(z)) / 4)
    # for y, z in zip([1, 0, 1, 0], [2.5, -1.5, -0.75, 3.0])]
    (
        losses.focal_loss_with_logits_grad,
        ([1, 0, 1, 0], [2.5, -1.5, -0.75, 3.0]),
        [-7.972405804143097e-05, 0.003193332229356736, -0.04061152032773774, 0.2112656026190416],
    ),
    # easy and confidently wrong positives: mp.dps = 50; (flz as in FIXED)
    # [float(mp.diff(lambda t: flz(1, t), mpf(z)) / 2) for z in (40, -40)]
    (
        losses.focal_loss_with_logits_grad,
        ([1.0, 1.0], [40.0, -40.0]),
        [-2.8753680276457497e-53, -0.12500000000000003],
    ),
    # mp.dps = 50; [float(g / 4) for g in (-1, 1, 0, 0)]: -y inside the margin, else 0
    (losses.hinge_grad, ([1, -1, 1, -1], [0.5, 0.5, 2.0, -3.0]), [-0.25, 0.25, 0.0, 0.0]),
    # mp.dps = 50; [float(mpf(0.5) / 3), float(-(1 - mpf(0.25)) / 3), 0.0]
    (losses.contrastive_loss_grad, ([1, 0, 0], [0.5, 0.25, 1.5]), [1 / 6, -0.25, 0.0]),
    # mp.dps = 50; (sm as above) [[float((q - (k == c)) / 2) for k, q in enumerate(sm(z))]
    # for c, z in zip([2, 1], [[1, 2, 3], [0.5, -1, 0]])] and zeros at the last position
    (
        losses.next_token_loss_grad,
        (np.array([[0, 2, 1]]), [[[1, 2, 3], [0.5, -1, 0], [9, 9, 9]]]),
        [
            [
                [0.04501528658519023, 0.12236423552739882, -0.16737952211258905],
                [0.2732746936330898, -0.4390241738451356, 0.16574948021204575],
                [0.0, 0.0, 0.0],
            ]
        ],
    ),
    # mp.dps = 50; (sm as above) [float(q - (k == 1)) for k, q in enumerate(sm([0.5, -1, 0]))]
    (
        losses.masked_lm_loss_grad,
        (np.array([[-100, 1, -100]]), [[[1, 2, 3], [0.5, -1, 0], [9, 9, 9]]]),
        [
            [
                [0.0, 0.0, 0.0],
                [0.5465493872661796, -0.8780483476902712, 0.3314989604240915],
                [0.0] * 3,
            ]
        ],
    ),
]


@pytest.mark.parametrize(
    ("grad", "args", "expected"), FIXED_GRADS, ids=lambda v: getattr(v, "__name__", "")
)
def test_gradient_matches_mpmath(grad, args, expected):
    """Each gradient agrees with an mpmath reference to a few ULP."""
    np.testing.assert_allclose(grad(*args), expected, rtol=8 * EPS, atol=0, err_msg=grad.__name__)


def test_focal_loss_with_logits_parameters_match_mpmath():
    """alpha and gamma reach both the loss and its gradient (gamma < 1 included)."""
    y, z = [1, 0, 1, 0], [2.5, -1.5, -0.75, 3.0]
    # mp.dps = 50; (flz as in FIXED) a, g = mpf(0.75), mpf(0.5)
    # float(sum(flz(y, mpf(z), a, g) for y, z in zip(Y, Z)) / 4)
    got = losses.focal_loss_with_logits(y, z, alpha=0.75, gamma=0.5)
    assert got == pytest.approx(0.3710870903198925, rel=8 * EPS, abs=0)
    # mp.dps = 50; [float(mp.diff(lambda t: flz(y, t, a, g), mpf(z)) / 4) for y, z in zip(Y, Z)]
    expected = [
        -0.005799948315384613,
        0.007067671266905168,
        -0.13312855705437932,
        0.06251670874034307,
    ]
    grad = losses.focal_loss_with_logits_grad(y, z, alpha=0.75, gamma=0.5)
    np.testing.assert_allclose(grad, expected, rtol=8 * EPS, atol=0)


def test_triplet_gradient_matches_hand_values():
    """Triplet gradients: unit vectors over N, and the subgradient 0 where a distance is 0."""
    anchor, positive, negative = (
        [[0.0, 0.0], [1.0, 1.0]],
        [[3.0, 4.0], [1.0, 1.0]],
        [[0, -4.5], [1, 1.5]],
    )
    d_a, d_p, d_n = losses.triplet_loss_grad(anchor, positive, negative)
    # Row 0: u = (a-p)/5 = (-0.6, -0.8), w = (a-n)/4.5 = (0, 1); row 1: u = 0 (d_ap = 0), w = (0, -1).
    # mp.dps = 50; [float(v / 2) for v in (-mpf(0.6) - 0, -mpf(0.8) - 1, 0 - 0, 0 + 1)]
    np.testing.assert_allclose(d_a, [[-0.3, -0.9], [0.0, 0.5]], rtol=4 * EPS, atol=0)
    # mp.dps = 50; [float(v / 2) for v in (mpf(0.6), mpf(0.8), 0, 0)]
    np.testing.assert_allclose(d_p, [[0.3, 0.4], [0.0, 0.0]], rtol=4 * EPS, atol=0)
    # mp.dps = 50; [float(v / 2) for v in (0, 1, 0, -1)]
    np.testing.assert_allclose(d_n, [[0.0, 0.5], [0.0, -0.5]], rtol=4 * EPS, atol=0)


# ---------------------------------------------------------------- finite differences


@pytest.mark.parametrize("name", ALL_LOSSES)
def test_gradient_matches_central_differences(name):
    """name_grad equals the central difference of name, argument by argument."""
    args = make_case(name, np.random.default_rng(0))
    grads = call_grad(name, args)
    for position, grad in zip(PREDICTIONS.get(name, (1,)), grads, strict=True):

        def loss_of(x, position=position):
            changed = list(args)
            changed[position] = x
            return losses.LOSSES[name](*changed)

        numeric = central_diff(loss_of, args[position])
        np.testing.assert_allclose(
            grad, numeric, rtol=1e-6, atol=1e-9, err_msg=f"{name}_grad, argument {position}"
        )


def test_kink_and_clipping_conventions():
    """Left derivative 0 at the kinks, and 0 where the loss clipped a probability."""
    assert losses.mae_grad([1.0, 2.0], [1.0, 3.0])[0] == 0.0  # y_hat == y
    assert losses.hinge_grad([1.0, -1.0], [1.0, -1.0]).tolist() == [0.0, 0.0]  # y s == 1
    assert losses.binary_cross_entropy_grad([1.0, 0.0], [0.0, 1.0]).tolist() == [0.0, 0.0]
    assert losses.focal_loss_grad([1, 0], [0.0, 1.0]).tolist() == [0.0, 0.0]
    assert losses.categorical_cross_entropy_grad([[1.0, 0.0]], [[0.0, 1.0]]).tolist() == [[0, 0]]
    # Contrastive at d = m: max(0, m - d)^2 is smooth there, its derivative is 0 from both sides.
    assert losses.contrastive_loss_grad([0], [1.0]).tolist() == [0.0]
    # Triplet at the kink (loss exactly 0): no gradient.
    grads = losses.triplet_loss_grad([[0.0, 0.0]], [[1.0, 0.0]], [[2.0, 0.0]])
    assert all(g.tolist() == [[0.0, 0.0]] for g in grads)


# ------------------------------------------------------------------------ properties

# Subnormal residuals carry only a few significant bits, so no relative tolerance holds there.
finite_floats = st.floats(-1e3, 1e3, allow_nan=False, allow_subnormal=False)
vectors = hnp.arrays(np.float64, st.integers(1, 6), elements=finite_floats)


@FEW
@given(seed=st.integers(0, 2**32 - 1), scale=st.sampled_from([1e-3, 1.0, 30.0]))
def test_every_loss_is_non_negative(seed, scale):
    """J >= 0 for every loss, on random valid input at several scales."""
    for name in ALL_LOSSES:
        args = make_case(name, np.random.default_rng(seed), scale)
        assert losses.LOSSES[name](*args) >= 0.0, name


@FEW
@given(y=vectors, t=st.floats(0.0, 10.0))
def test_zero_loss_at_a_perfect_prediction(y, t):
    """Regression losses at y_hat = y, hinge with y s >= 1, metric losses that are satisfied."""
    for name in ("mse", "mae", "huber"):
        assert losses.LOSSES[name](y, y) == 0.0  # exact: every residual is 0
        assert not np.any(losses.LOSS_GRADIENTS[name + "_grad"](y, y))
    labels = np.where(y >= 0, 1.0, -1.0)
    assert losses.hinge(labels, labels * (1.0 + t)) == 0.0
    assert losses.contrastive_loss([1, 0], [0.0, 1.0 + t]) == 0.0
    anchor = y.reshape(1, -1)
    far = anchor.copy()
    # ||a - p|| = 0 and ||a - n|| ~ 2 + t > margin = 1, with room to spare for rounding.
    far[0, 0] += 2.0 + t
    assert losses.triplet_loss(anchor, anchor, far) == 0.0


@FEW
@given(data=st.data())
def test_symmetries(data):
    """Regression losses are symmetric in (y, y_hat); BCE and hinge under a label flip."""
    y = data.draw(vectors)
    y_hat = data.draw(hnp.arrays(np.float64, y.shape, elements=finite_floats))
    for name in ("mse", "mae", "huber"):
        # exact: r and -r give the same |r| and r**2
        assert losses.LOSSES[name](y, y_hat) == losses.LOSSES[name](y_hat, y)
    labels = (y > 0).astype(float)
    # exact for hard labels: the two softplus terms swap
    assert losses.binary_cross_entropy_with_logits(
        labels, y_hat
    ) == losses.binary_cross_entropy_with_logits(1 - labels, -y_hat)
    signs = 2 * labels - 1
    assert losses.hinge(signs, y_hat) == losses.hinge(-signs, -y_hat)


def sigmoid(z):
    """The textbook sigmoid; used only for |z| <= 10 here, where it cannot overflow."""
    return 1.0 / (1.0 + np.exp(-z))


@FEW
@given(
    y=hnp.arrays(np.float64, 6, elements=st.floats(0, 1)),
    z=hnp.arrays(np.float64, 6, elements=st.floats(-10, 10)),
)
def test_bce_from_logits_equals_bce_of_sigmoid(y, z):
    """Away from the clip, BCE(y, sigma(z)) == BCE_with_logits(y, z), and the chain rule holds."""
    p = sigmoid(z)
    # 1 - p loses up to eps/p(1-p) ~ 1e-11 relative at |z| = 10.
    assert losses.binary_cross_entropy(y, p) == pytest.approx(
        losses.binary_cross_entropy_with_logits(y, z), rel=1e-9
    )
    np.testing.assert_allclose(
        losses.binary_cross_entropy_grad(y, p) * p * (1 - p),
        losses.binary_cross_entropy_with_logits_grad(y, z),
        rtol=1e-8,
        atol=1e-15,
    )


logit_rows = hnp.arrays(np.float64, (3, 4), elements=st.floats(-50, 50))


@FEW
@given(z=logit_rows, labels=hnp.arrays(np.int64, 3, elements=st.integers(0, 3)))
def test_softmax_ce_equals_sparse_ce_for_one_hot(z, labels):
    """One-hot rows through softmax_cross_entropy give sparse_categorical_cross_entropy."""
    one_hot = np.eye(4)[labels]
    assert losses.softmax_cross_entropy(one_hot, z) == pytest.approx(
        losses.sparse_categorical_cross_entropy(labels, z), rel=4 * EPS, abs=1e-300
    )
    np.testing.assert_allclose(
        losses.softmax_cross_entropy_grad(one_hot, z),
        losses.sparse_categorical_cross_entropy_grad(labels, z),
        rtol=4 * EPS,
        atol=0,
    )


@FEW
@given(
    z=hnp.arrays(np.float64, (3, 4), elements=st.floats(-5, 5)),
    y=hnp.arrays(np.float64, (3, 4), elements=st.floats(0.01, 1)),
)
def test_categorical_ce_of_softmax_equals_softmax_ce(z, y):
    """categorical_cross_entropy(y, softmax(z)) == softmax_cross_entropy(y, z) when nothing clips."""
    y = y / y.sum(axis=1, keepdims=True)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    assert losses.categorical_cross_entropy(y, p) == pytest.approx(
        losses.softmax_cross_entropy(y, z), rel=1e-12
    )


@FEW
@given(
    y=hnp.arrays(np.int64, 6, elements=st.integers(0, 1)),
    p=hnp.arrays(np.float64, 6, elements=st.floats(0, 1)),
)
def test_focal_with_gamma_0_alpha_half_is_half_bce(y, p):
    """gamma = 0 removes the modulating factor; alpha = 1/2 weighs both classes by 1/2."""
    focal = losses.focal_loss(y, p, alpha=0.5, gamma=0.0)
    assert focal == pytest.approx(0.5 * losses.binary_cross_entropy(y, p), rel=4 * EPS)
    np.testing.assert_allclose(
        losses.focal_loss_grad(y, p, alpha=0.5, gamma=0.0),
        0.5 * losses.binary_cross_entropy_grad(y, p),
        rtol=4 * EPS,
        atol=0,
    )


@FEW
@given(
    y=hnp.arrays(np.int64, 6, elements=st.integers(0, 1)),
    z=hnp.arrays(np.float64, 6, elements=st.floats(-1e3, 1e3)),
)
def test_focal_with_logits_gamma_0_alpha_half_is_half_bce_with_logits(y, z):
    """gamma = 0, alpha = 1/2: half of binary_cross_entropy_with_logits, loss and gradient."""
    focal = losses.focal_loss_with_logits(y, z, alpha=0.5, gamma=0.0)
    # alpha_t * softplus(-u) with alpha_t = 1/2 exact: the same terms as BCE, halved.
    assert focal == pytest.approx(
        0.5 * losses.binary_cross_entropy_with_logits(y, z), rel=4 * EPS, abs=1e-300
    )
    np.testing.assert_allclose(
        losses.focal_loss_with_logits_grad(y, z, alpha=0.5, gamma=0.0),
        0.5 * losses.binary_cross_entropy_with_logits_grad(y, z),
        rtol=4 * EPS,
        # Below the normal range (|z| > 708: sigma(-|z|)/N < 2.2e-308) a result has only
        # absolute precision, 4.9e-324 per step, and the two routes round differently.
        atol=20 * 5e-324,
    )


@FEW
@given(
    y=hnp.arrays(np.int64, 6, elements=st.integers(0, 1)),
    z=hnp.arrays(np.float64, 6, elements=st.floats(-10, 10)),
    alpha=st.floats(0, 1),
    gamma=st.floats(0, 5),
)
def test_focal_with_logits_equals_focal_of_sigmoid(y, z, alpha, gamma):
    """Where nothing is clipped (|z| <= 10 < 16.1), focal_loss(y, sigma(z)) is the same loss,
    and the chain rule focal_loss_grad * sigma'(z) gives the gradient in the logit."""
    p = sigmoid(z)
    # p and 1 - p carry a rounding error of up to eps/p(1-p) ~ 1e-11 relative at |z| = 10,
    # magnified by gamma in (1 - p_t)**gamma.
    assert losses.focal_loss(y, p, alpha=alpha, gamma=gamma) == pytest.approx(
        losses.focal_loss_with_logits(y, z, alpha=alpha, gamma=gamma), rel=1e-9, abs=1e-300
    )
    np.testing.assert_allclose(
        losses.focal_loss_grad(y, p, alpha=alpha, gamma=gamma) * p * (1 - p),
        losses.focal_loss_with_logits_grad(y, z, alpha=alpha, gamma=gamma),
        rtol=1e-8,
        atol=1e-15,
    )


def test_focal_with_logits_has_no_clipping_floor():
    """Beyond |z| = 16.1 the clipped focal_loss goes flat; from logits the loss and the
    gradient keep moving: a confidently wrong positive pulls with dJ/dz -> -alpha."""
    z = np.array([-40.0, -20.0])
    y = np.ones(2)
    flat = losses.focal_loss_grad(y, sigmoid(z))
    assert not np.any(flat)  # exact: 0 where p was clipped
    grad = losses.focal_loss_with_logits_grad(y, z)
    # mp.dps = 50; (flz as in FIXED) [float(mp.diff(lambda t: flz(1, t), mpf(v)) / 2)
    # for v in (-40, -20)]
    np.testing.assert_allclose(
        grad, [-0.12500000000000003, -0.12500000953283544], rtol=8 * EPS, atol=0
    )


@FEW
@given(data=st.data())
def test_huber_limits(data):
    """Huber is 0.5*MSE once delta covers every residual, and delta*MAE - delta^2/2 below all."""
    y = data.draw(vectors)
    y_hat = data.draw(hnp.arrays(np.float64, y.shape, elements=finite_floats))
    r = np.abs(y - y_hat)
    big = 2.0 * r.max() + 1.0
    assert losses.huber(y, y_hat, delta=big) == pytest.approx(
        0.5 * losses.mse(y, y_hat), rel=4 * EPS
    )
    np.testing.assert_allclose(
        losses.huber_grad(y, y_hat, delta=big), 0.5 * losses.mse_grad(y, y_hat), rtol=4 * EPS
    )
    small = r.min() / 2
    if small > 1e-300:  # a positive delta well clear of the subnormals
        expected = small * losses.mae(y, y_hat) - 0.5 * small**2
        assert losses.huber(y, y_hat, delta=small) == pytest.approx(expected, rel=1e-12)
        np.testing.assert_allclose(
            losses.huber_grad(y, y_hat, delta=small),
            small * losses.mae_grad(y, y_hat),
            rtol=4 * EPS,
        )


@FEW
@given(
    z=hnp.arrays(np.float64, (5, 2), elements=st.floats(-20, 20)),
    y=hnp.arrays(np.float64, 5, elements=st.floats(0, 1)),
)
def test_two_class_softmax_ce_is_bce_with_logits_of_the_difference(z, y):
    """softmax CE over (z0, z1) with targets (1-y, y) is BCE with logits z1 - z0."""
    targets = np.stack([1 - y, y], axis=1)
    # z1 - z0 is rounded once, an absolute error of at most 2e-15 in the logit.
    assert losses.softmax_cross_entropy(targets, z) == pytest.approx(
        losses.binary_cross_entropy_with_logits(y, z[:, 1] - z[:, 0]), rel=1e-12, abs=1e-300
    )
    grad = losses.softmax_cross_entropy_grad(targets, z)
    bce_grad = losses.binary_cross_entropy_with_logits_grad(y, z[:, 1] - z[:, 0])
    np.testing.assert_allclose(grad[:, 1], bce_grad, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(grad[:, 0], -bce_grad, rtol=1e-12, atol=1e-15)


# ------------------------------------------------------------------- sequence losses


def test_sequence_losses_are_sparse_ce_on_the_scored_positions():
    """next_token shifts by one and skips t = T-1; masked_lm scores only labels != -100."""
    tokens, logits = make_case("next_token_loss", np.random.default_rng(1))
    inner = losses.sparse_categorical_cross_entropy(
        tokens[:, 1:].ravel(), logits[:, :-1].reshape(-1, 4)
    )
    assert losses.next_token_loss(tokens, logits) == pytest.approx(inner, rel=4 * EPS)
    grad = losses.next_token_loss_grad(tokens, logits)
    assert not np.any(grad[:, -1])

    labels, logits = make_case("masked_lm_loss", np.random.default_rng(1))
    scored = labels != losses.IGNORE_INDEX
    inner = losses.sparse_categorical_cross_entropy(labels[scored], logits[scored])
    assert losses.masked_lm_loss(labels, logits) == pytest.approx(inner, rel=4 * EPS)
    assert not np.any(losses.masked_lm_loss_grad(labels, logits)[~scored])


def test_masked_lm_with_nothing_scored_is_zero():
    """No scored position: loss 0.0 and a zero gradient (PyTorch would give nan)."""
    labels = np.full((2, 3), -100)
    logits = np.random.default_rng(0).normal(size=(2, 3, 5))
    assert no_warnings(losses.masked_lm_loss, labels, logits) == 0.0
    grad = no_warnings(losses.masked_lm_loss_grad, labels, logits)
    assert grad.shape == logits.shape and not np.any(grad)


# ------------------------------------------------------------------------ extremes

BIG = 1e308
EXTREMES = {
    "mse": ([0.0, 1e150, -1e150], [1e-300, -1e150, 5e-324]),
    "mae": ([0.0, BIG, -BIG], [5e-324, BIG, 0.0]),
    "huber": ([0.0, BIG, -BIG], [5e-324, -1e150, 0.0]),
    "binary_cross_entropy": ([1, 0, 1, 0, 0.5], [0.0, 1.0, 1.0, 0.0, 5e-324]),
    "binary_cross_entropy_with_logits": ([1, 0, 1, 0, 0.5], [BIG, -BIG, -BIG, BIG, BIG]),
    "categorical_cross_entropy": ([[1, 0, 0], [0, 0.5, 0.5]], [[0, 1, 0], [1, 0, 5e-324]]),
    "softmax_cross_entropy": ([[1, 0, 0], [0, 0.5, 0.5]], [[BIG, -BIG, 0], [-BIG, BIG, BIG]]),
    "sparse_categorical_cross_entropy": (
        np.array([0, 1, 2]),
        [[BIG, -BIG, 0], [-BIG, BIG, -BIG], [745, -745, 0]],
    ),
    "focal_loss": ([1, 0, 1, 0], [0.0, 1.0, 1.0, 5e-324]),
    "focal_loss_with_logits": ([1, 0, 1, 0, 1], [BIG, -BIG, -BIG, BIG, 5e-324]),
    "hinge": ([1, -1, 1, -1], [BIG, BIG, -BIG, -BIG]),
    "contrastive_loss": ([1, 0, 0], [1e150, BIG, 5e-324]),
    "triplet_loss": ([[BIG / 4, 0.0]], [[-BIG / 4, 0.0]], [[BIG / 4, 1e-300]]),
    # The largest per-position loss is 1e308, finite; a spread of 2e308 would overflow.
    "next_token_loss": (np.array([[0, 0, 0]]), [[[BIG, -BIG], [0.0, BIG], [5.0, 5.0]]]),
    "masked_lm_loss": (np.array([[0, -100, 0]]), [[[BIG, -BIG], [BIG, -BIG], [0.0, BIG]]]),
}


@pytest.mark.parametrize("name", ALL_LOSSES)
def test_extreme_inputs_give_no_warning_and_finite_results(name):
    """Logits of +-1e308, probabilities of exactly 0 and 1, subnormals: finite, silent."""
    args = EXTREMES[name]
    assert np.isfinite(no_warnings(losses.LOSSES[name], *args)), name
    for grad in no_warnings(call_grad, name, args):
        assert np.all(np.isfinite(grad)), name


@pytest.mark.parametrize(("alpha", "gamma"), [(0.25, 2.0), (1.0, 0.5), (0.0, 0.0), (0.5, 7.0)])
def test_focal_with_logits_at_the_limits(alpha, gamma):
    """+-1.8e308 and +-inf, with every kind of alpha_t and gamma < 1: no warning, no nan;
    finite for finite logits, and the limits at +-inf (an easy sample costs 0; a
    confidently wrong one costs inf and pulls with -s alpha_t/N)."""
    huge = np.finfo(np.float64).max
    y = np.array([1, 0, 1, 0])
    z = np.array([huge, -huge, -huge, huge])
    assert np.isfinite(no_warnings(losses.focal_loss_with_logits, y, z, alpha, gamma))
    grad = no_warnings(losses.focal_loss_with_logits_grad, y, z, alpha, gamma)
    assert np.all(np.isfinite(grad))
    alpha_t = np.array([alpha, 1 - alpha])
    # exact: sigma(-u) = 1 and sigma(u) = 0 for the wrong ones; 0 for the easy ones
    np.testing.assert_array_equal(grad, [0.0, 0.0, -alpha_t[0] / 4, alpha_t[1] / 4])
    inf = np.array([np.inf, -np.inf])
    assert no_warnings(losses.focal_loss_with_logits, [1, 0], inf, alpha, gamma) == 0.0
    wrong = no_warnings(losses.focal_loss_with_logits, [1, 0], -inf, alpha, gamma)
    assert wrong == (np.inf if alpha_t.max() > 0 else 0.0)
    grad_inf = no_warnings(losses.focal_loss_with_logits_grad, [1, 0], -inf, alpha, gamma)
    np.testing.assert_array_equal(grad_inf, [-alpha_t[0] / 2, alpha_t[1] / 2])


def test_focal_with_logits_nan_propagates_even_where_alpha_t_is_0():
    """alpha = 1 gives the negatives no weight, but a nan logit still gives nan."""
    assert np.isnan(no_warnings(losses.focal_loss_with_logits, [0, 1], [np.nan, 0.0], 1.0))
    grad = no_warnings(losses.focal_loss_with_logits_grad, [0, 1], [np.nan, 0.0], 1.0)
    assert np.isnan(grad[0]) and np.isfinite(grad[1])


def test_a_true_value_beyond_float64_is_inf_without_warning():
    """(1e200)^2 exceeds float64: the exact answer rounds to inf, and nothing warns."""
    assert no_warnings(losses.mse, [0.0], [1e200]) == np.inf
    assert no_warnings(losses.mse_grad, [0.0], np.float32([3e38])) == np.float32(np.inf)


@pytest.mark.parametrize("name", ALL_LOSSES)
def test_nan_in_y_pred_propagates(name):
    """A nan prediction gives a nan loss and a nan somewhere in the gradient."""
    args = list(make_case(name, np.random.default_rng(2)))
    position = PREDICTIONS.get(name, (1,))[0]
    pred = np.array(args[position], dtype=np.float64)
    pred.flat[0] = np.nan
    args[position] = pred
    assert np.isnan(no_warnings(losses.LOSSES[name], *args)), name
    assert any(np.isnan(g).any() for g in no_warnings(call_grad, name, args)), name


# -------------------------------------------------------------- dtypes, shapes, inputs


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ALL_LOSSES)
def test_gradient_keeps_shape_and_dtype_and_loss_is_float(name, dtype):
    """float32 predictions give float32 gradients, float64 give float64; J is a Python float."""
    positions = PREDICTIONS.get(name, (1,))
    args = [
        np.asarray(a, dtype=dtype) if i in positions else a
        for i, a in enumerate(make_case(name, np.random.default_rng(3)))
    ]
    assert type(losses.LOSSES[name](*args)) is float
    for position, grad in zip(positions, call_grad(name, args), strict=True):
        assert isinstance(grad, np.ndarray)
        assert grad.shape == args[position].shape and grad.dtype == dtype, name
    # float32 is computed in float64 and rounded once.
    if dtype == np.float32:
        wide = call_grad(
            name,
            [np.asarray(a, dtype=np.float64) if i in positions else a for i, a in enumerate(args)],
        )
        for narrow, exact in zip(call_grad(name, args), wide, strict=True):
            np.testing.assert_array_equal(narrow, exact.astype(np.float32))


def test_lists_ints_and_scalars_give_float64():
    """Integers, lists and Python scalars give float64; a 0-d input gives a 0-d gradient."""
    grad = losses.mse_grad([1, 2], [3, 5])
    assert grad.dtype == np.float64
    np.testing.assert_allclose(grad, [2.0, 3.0], rtol=0)  # 2 * (y_hat - y) / 2, exact
    scalar = losses.mse_grad(1.0, 3.0)
    assert isinstance(scalar, np.ndarray) and scalar.shape == () and scalar == 4.0  # exact


@pytest.mark.parametrize("name", ALL_LOSSES)
def test_inputs_are_not_modified(name):
    """Neither the loss nor its gradient writes into the caller's arrays."""
    args = make_case(name, np.random.default_rng(4))
    before = [np.array(a, copy=True) for a in args]
    losses.LOSSES[name](*args)
    call_grad(name, args)
    for a, b in zip(args, before, strict=True):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------- errors

z2 = np.zeros((2, 3))
BAD_INPUT = [
    (lambda: losses.mse([1.0, 2.0], [[1.0], [2.0]]), r"same shape; got \(2,\) and \(2, 1\)"),
    (lambda: losses.mae([], []), "y_pred is empty"),
    (lambda: losses.huber([1.0], [1.0], delta=0.0), "delta must be > 0"),
    (lambda: losses.binary_cross_entropy([1.0], [1.5]), r"probs must lie in \[0, 1\].*with_logits"),
    (lambda: losses.binary_cross_entropy([2.0], [0.5]), r"y_true must lie in \[0, 1\]; got 2.0"),
    (lambda: losses.binary_cross_entropy([1.0], [0.5], eps=0.0), "eps must lie in"),
    (
        lambda: losses.binary_cross_entropy_with_logits([-1.0], [0.5]),
        r"y_true must lie in \[0, 1\]",
    ),
    (
        lambda: losses.categorical_cross_entropy([1, 0, 0], [0.5, 0.25, 0.25]),
        r"2-d arrays of shape \(N, K\)",
    ),
    (
        lambda: losses.softmax_cross_entropy([[0.5, 0.2, 0], [1, 0, 0]], z2),
        "each row of y_true must sum to 1",
    ),
    (
        lambda: losses.sparse_categorical_cross_entropy(np.array([0, 3]), z2),
        r"class indices in \[0, 3\); got 3",
    ),
    (
        lambda: losses.sparse_categorical_cross_entropy(np.array([0.0, 1.0]), z2),
        "integer class indices",
    ),
    (
        lambda: losses.sparse_categorical_cross_entropy(np.array([0, 1, 2]), z2),
        r"shape \(2,\) to match logits",
    ),
    (lambda: losses.sparse_categorical_cross_entropy(np.array([0, -100]), z2), "class indices"),
    (
        lambda: losses.sparse_categorical_cross_entropy(np.array([0]), np.zeros(3)),
        "2-d array of shape",
    ),
    (lambda: losses.focal_loss([0.5], [0.5]), "y_true must be 0 or 1; got 0.5"),
    (lambda: losses.focal_loss([1], [0.5], gamma=-1.0), "gamma must be >= 0"),
    (lambda: losses.focal_loss([1], [0.5], alpha=2.0), r"alpha must lie in \[0, 1\]"),
    (lambda: losses.focal_loss_with_logits([0.5], [0.5]), "y_true must be 0 or 1; got 0.5"),
    (lambda: losses.focal_loss_with_logits([1], [0.5], gamma=-1.0), "gamma must be >= 0"),
    (lambda: losses.focal_loss_with_logits([1], [0.5], gamma=np.nan), "gamma must be >= 0"),
    (lambda: losses.focal_loss_with_logits([1], [0.5], alpha=-0.1), r"alpha must lie in \[0, 1\]"),
    (
        lambda: losses.focal_loss_with_logits([1, 0], [[0.5], [1.0]]),
        r"y_true and logits must have the same shape",
    ),
    (lambda: losses.focal_loss_with_logits([], []), "logits is empty"),
    (
        lambda: losses.hinge([0.0, 1.0], [1.0, 2.0]),
        r"-1 or \+1 for the hinge loss; got 0.0 at index \(0,\)",
    ),
    (lambda: losses.contrastive_loss([1], [-0.5]), "distances must be >= 0"),
    (lambda: losses.contrastive_loss([2], [0.5]), "y_true must be 0 or 1"),
    (lambda: losses.contrastive_loss([1], [0.5], margin=-1.0), "margin must be >= 0"),
    (
        lambda: losses.triplet_loss(z2, z2, np.zeros((2, 4))),
        r"anchor and negative must have the same shape",
    ),
    (lambda: losses.triplet_loss(z2[0], z2[0], z2[0]), r"2-d arrays of shape \(N, D\)"),
    (lambda: losses.next_token_loss(np.array([[0]]), np.zeros((1, 1, 3))), "T >= 2"),
    (
        lambda: losses.next_token_loss(np.array([[0, 5]]), np.zeros((1, 2, 3))),
        "tokens must be class indices",
    ),
    (
        lambda: losses.next_token_loss(np.array([0, 1]), np.zeros((2, 3))),
        r"3-d array of shape \(B, T, V\)",
    ),
    (
        lambda: losses.masked_lm_loss(np.array([[0, -1]]), np.zeros((1, 2, 3))),
        r"got -1 at index \(0, 1\)",
    ),
]


@pytest.mark.parametrize(("call", "message"), BAD_INPUT)
def test_bad_input_raises_a_clear_value_error(call, message):
    """Bad input raises ValueError naming the argument and what was expected."""
    with pytest.raises(ValueError, match=message):
        call()


def test_gradients_validate_like_their_losses():
    """Each _grad rejects the same bad input as its loss."""
    with pytest.raises(ValueError, match="same shape"):
        losses.mse_grad([1.0, 2.0], [[1.0], [2.0]])
    with pytest.raises(ValueError, match="-1 or"):
        losses.hinge_grad([0.0], [1.0])
    with pytest.raises(ValueError, match="probs must lie"):
        losses.focal_loss_grad([1], [1.5])
    with pytest.raises(ValueError, match="y_true must be 0 or 1"):
        losses.focal_loss_with_logits_grad([-1], [1.5])
    with pytest.raises(ValueError, match="alpha must lie"):
        losses.focal_loss_with_logits_grad([1], [1.5], alpha=1.5)
    with pytest.raises(ValueError, match="class indices"):
        losses.masked_lm_loss_grad(np.array([[7, -100]]), np.zeros((1, 2, 3)))
