"""What does each reference cost? Nanoseconds per element for every activation and loss.

The lessons print timings and never assert on them (docs/lesson-guide.md); the cost
claims the course makes are measured here, on the machine at hand, and each is printed
with whether it holds:

- ReLU is cheaper than every activation that calls exp, erf, tanh or log;
- stability has a price: the stable sigmoid and softmax cost more than the textbook ones;
- the sparse cross-entropy (integer labels) costs about what the one-hot one costs, while
  the one-hot targets take K times the memory;
- attention's time grows like T^2 with the sequence length, the loss's like T.

Every figure is CPU time per element, best of ``REPEAT`` runs (``course_lib.timing``), on
float64 input of ``SIZE`` elements (float32 for the second activation column). BLAS is
limited to one thread, as in the lessons. Run: ``python benchmarks/cost.py`` (about 20 s).
The exit code is 0 whatever the figures, as for the other benchmarks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from course_lib import activations as act
from course_lib import losses, timing

SIZE = 200_000
ROWS, K = 2_000, 100  # SIZE elements as (ROWS, K) for softmax and the class losses
REPEAT = 7
PARAMS = {
    "prelu": {"alpha": 0.25},
    "prelu_grad": {"alpha": 0.25},
    "prelu_grad_alpha": {"alpha": 0.25},
}
# Exact piecewise-linear functions: no transcendental call.
PIECEWISE = {"identity", "binary_step", "relu", "leaky_relu", "prelu"}


def _ns(fn: Callable[[], Any], size: int = SIZE) -> float:
    return timing.ns_per_element(fn, size, repeat=REPEAT)


def activation_table(rng: np.random.Generator) -> dict[str, float]:
    x64 = rng.standard_normal(SIZE) * 3.0
    x32 = x64.astype(np.float32)
    small = rng.standard_normal((ROWS // 40, 8)) * 3.0  # Jacobians: (n, 8, 8) per row
    print(f"{'activation or gradient':24s} {'float64':>9s} {'float32':>9s} {'x ReLU':>7s}")
    cost: dict[str, float] = {}
    entries = [*act.ACTIVATIONS.items(), *act.GRADIENTS.items()]
    relu64 = _ns(lambda: act.relu(x64))
    for name, fn in entries:
        kwargs = PARAMS.get(name, {})
        if name.endswith("jacobian"):
            ns64 = _ns(lambda fn=fn: fn(small), small.size)
            ns32 = _ns(lambda fn=fn: fn(small.astype(np.float32)), small.size)
        else:
            shape = (ROWS, K) if name in ("softmax", "log_softmax") else (SIZE,)
            a64, a32 = x64.reshape(shape), x32.reshape(shape)
            ns64 = _ns(lambda fn=fn, a=a64, kw=kwargs: fn(a, **kw))
            ns32 = _ns(lambda fn=fn, a=a32, kw=kwargs: fn(a, **kw))
        cost[name] = ns64
        print(f"{name:24s} {ns64:9.1f} {ns32:9.1f} {ns64 / relu64:7.1f}")
    return cost


def loss_inputs(rng: np.random.Generator) -> dict[str, tuple[Any, ...]]:
    """Valid arguments for every loss of ``losses.LOSSES``; y_pred is the second (or, for the
    triplet loss, every) argument."""
    z = rng.standard_normal(SIZE) * 3.0
    y01 = (rng.random(SIZE) < 0.5).astype(float)
    logits = rng.standard_normal((ROWS, K))
    labels = rng.integers(0, K, ROWS)
    one_hot = np.eye(K)[labels]
    seq_logits = logits.reshape(20, ROWS // 20, K)
    seq_labels = labels.reshape(20, ROWS // 20)
    masked = np.where(rng.random(seq_labels.shape) < 0.15, seq_labels, -100)
    return {
        "mse": (z, rng.standard_normal(SIZE)),
        "mae": (z, rng.standard_normal(SIZE)),
        "huber": (z, rng.standard_normal(SIZE)),
        "binary_cross_entropy": (y01, act.sigmoid(z)),
        "binary_cross_entropy_with_logits": (y01, z),
        "focal_loss": (y01, act.sigmoid(z)),
        "focal_loss_with_logits": (y01, z),
        "hinge": (2 * y01 - 1, z),
        "contrastive_loss": (y01, np.abs(z)),
        "categorical_cross_entropy": (one_hot, act.softmax(logits)),
        "softmax_cross_entropy": (one_hot, logits),
        "sparse_categorical_cross_entropy": (labels, logits),
        "triplet_loss": tuple(rng.standard_normal((ROWS // 3, K)) for _ in range(3)),
        "next_token_loss": (seq_labels, seq_logits),
        "masked_lm_loss": (masked, seq_logits),
    }


def loss_table(rng: np.random.Generator) -> dict[str, float]:
    print(f"\n{'loss':34s} {'J ns/el':>8s} {'dJ ns/el':>9s}")
    inputs = loss_inputs(rng)
    cost: dict[str, float] = {}
    for name, fn in losses.LOSSES.items():
        if name not in inputs:
            print(f"{name:34s} (no inputs known to this benchmark: add them to loss_inputs)")
            continue
        args = inputs[name]
        size = sum(a.size for a in args) if name == "triplet_loss" else args[1].size
        grad = losses.LOSS_GRADIENTS[name + "_grad"]
        cost[name] = _ns(lambda fn=fn, a=args: fn(*a), size)
        ns_grad = _ns(lambda g=grad, a=args: g(*a), size)
        print(f"{name:34s} {cost[name]:8.1f} {ns_grad:9.1f}")
    return cost


def _slope(sizes: np.ndarray, seconds: list[float]) -> float:
    return float(np.polyfit(np.log(sizes), np.log(seconds), 1)[0])


def claims(act_cost: dict[str, float], loss_cost: dict[str, float], rng: np.random.Generator):
    def verdict(holds: bool) -> str:
        return "holds" if holds else "DOES NOT HOLD on this machine"

    print("\nClaims of the lessons")
    transcendental = [n for n in act.ACTIVATIONS if n not in PIECEWISE]
    cheapest = min(transcendental, key=act_cost.__getitem__)
    holds = all(act_cost[n] > act_cost["relu"] for n in transcendental)
    print(
        f"- ReLU ({act_cost['relu']:.1f} ns) is cheaper than every transcendental activation "
        f"(cheapest: {cheapest}, {act_cost[cheapest]:.1f} ns): {verdict(holds)}"
    )

    x = rng.standard_normal(SIZE) * 3.0
    rows = x.reshape(ROWS, K)
    naive_sigmoid = _ns(lambda: 1.0 / (1.0 + np.exp(-x)))
    naive_softmax = _ns(lambda: np.exp(rows) / np.exp(rows).sum(axis=1, keepdims=True))
    print(
        f"- the stable sigmoid costs {act_cost['sigmoid'] / naive_sigmoid:.1f}x the textbook "
        f"1/(1+exp(-x)), the stable softmax {act_cost['softmax'] / naive_softmax:.1f}x the "
        f"unshifted one: {verdict(act_cost['sigmoid'] > naive_sigmoid)}"
    )

    ratio = loss_cost["sparse_categorical_cross_entropy"] / loss_cost["softmax_cross_entropy"]
    print(
        f"- sparse / one-hot cross-entropy time: {ratio:.2f} (about the same: "
        f"{verdict(0.5 < ratio < 2.0)}); one-hot float64 targets take {K}x the bytes of "
        "int64 labels (exact)"
    )

    head_dim, lengths = 64, np.array([256, 512, 1024, 2048])

    def attention(length: int) -> float:
        q, k, v = rng.standard_normal((3, length, head_dim))
        return timing.seconds(lambda: act.softmax(q @ k.T / np.sqrt(head_dim)) @ v, repeat=3)

    def loss(length: int) -> float:
        lab, lg = rng.integers(0, 250, length), rng.standard_normal((length, 250))
        return timing.seconds(lambda: losses.sparse_categorical_cross_entropy(lab, lg), repeat=3)

    k_attention = _slope(lengths, [attention(t) for t in lengths])
    k_loss = _slope(lengths, [loss(t) for t in lengths])
    print(
        f"- time ~ T^k: attention k = {k_attention:.2f} (near 2: {verdict(k_attention > 1.5)}), "
        f"loss k = {k_loss:.2f} (near 1: {verdict(0.6 < k_loss < 1.4)})"
    )


def main() -> int:
    rng = np.random.default_rng(0)
    with threadpool_limits(limits=1, user_api="blas"):
        act_cost = activation_table(rng)
        loss_cost = loss_table(rng)
        claims(act_cost, loss_cost, rng)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
