"""A tiny NumPy multilayer perceptron for the lessons' experiments.

Micrograd-sized on purpose: one ``Dense`` layer, one ``MLP``, backpropagation written out
layer by layer, plain SGD with momentum. Every activation and loss comes from the course
registries (``activations.ACTIVATIONS``/``GRADIENTS``, ``losses.LOSSES``/``LOSS_GRADIENTS``),
so the network uses exactly the functions the lessons derive.

Usage::

    model = MLP([2, 16, 16, 1], activation="relu", loss="binary_cross_entropy_with_logits")
    history = model.fit(X, y, epochs=200, batch_size=32, lr=0.1, momentum=0.9)
    model.forward(X, record=True)          # model.records[i]: statistics of layer i
    dead_fraction(model, X)                # share of hidden ReLU units that never fire
    np.array(model.grad_norms)             # (steps, layers): ||dJ/dW|| per layer per step
    model.backward_from(dJ_dy_hat); model.apply_gradients(lr=0.05)  # a cost of your own
    normal_moment(act.gelu, k=2)           # E[gelu(Z)^2] for Z ~ N(0, 1)

An activation or a loss is given by name, or as ``(name, params)``, e.g.
``("leaky_relu", {"alpha": 0.1})`` or ``("focal_loss", {"gamma": 2.0})``. PReLU's slope is
learned: ``("prelu", {"alpha": 0.25, "per_unit": True})`` gives one slope per unit, otherwise
one per layer. Everything is computed in float64.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from course_lib import activations as act
from course_lib import losses as lss

Spec = str | tuple[str, Mapping[str, Any]]

# Their formula already contains the sigmoid or softmax, so the network must output raw scores.
LOGIT_LOSSES = frozenset(
    {
        "softmax_cross_entropy",
        "binary_cross_entropy_with_logits",
        "focal_loss_with_logits",
        "sparse_categorical_cross_entropy",
        "hinge",
    }
)
# These take probabilities, so the output layer needs a sigmoid or a softmax.
PROB_LOSSES = frozenset({"binary_cross_entropy", "categorical_cross_entropy", "focal_loss"})
REGRESSION_LOSSES = frozenset({"mse", "mae", "huber"})
# Not elementwise: their derivative is a Jacobian of shape (N, K, K).
VECTOR_ACTIVATIONS = frozenset({"softmax", "log_softmax"})


def _split(spec: Spec) -> tuple[str, dict[str, Any]]:
    """``"relu"`` -> ``("relu", {})``; ``("elu", {"alpha": 2})`` -> ``("elu", {"alpha": 2})``."""
    if isinstance(spec, str):
        return spec, {}
    name, params = spec
    return name, dict(params)


def _lookup(registry: Mapping[str, Callable], key: str, name: str, kind: str) -> Callable:
    if key not in registry:
        raise ValueError(f"unknown {kind} {name!r}; known: {', '.join(sorted(registry))}")
    return registry[key]


def init_weights(fan_in: int, fan_out: int, init: str, rng: np.random.Generator) -> np.ndarray:
    r"""$W \sim \mathcal N(0, \sigma^2)$ or $U(-l, l)$: a ``(fan_in, fan_out)`` weight matrix.

    - ``"he"``: $\mathcal N(0, 2/n_{in})$ (He et al. 2015, for ReLU).
    - ``"xavier"``: Glorot *uniform*, $U(-l, l)$ with $l = \sqrt{6/(n_{in}+n_{out})}$, so
      $\operatorname{Var} W = l^2/3 = 2/(n_{in}+n_{out})$ (Keras' default).
    - ``"xavier_normal"``: $\mathcal N(0, 2/(n_{in}+n_{out}))$.
    - ``"lecun"``: $\mathcal N(0, 1/n_{in})$ (for SELU; a plain normal, not Keras' truncated one).
    """
    if init == "he":
        return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(fan_in, fan_out))
    if init == "xavier":
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, size=(fan_in, fan_out))
    if init == "xavier_normal":
        return rng.normal(0.0, np.sqrt(2.0 / (fan_in + fan_out)), size=(fan_in, fan_out))
    if init == "lecun":
        return rng.normal(0.0, np.sqrt(1.0 / fan_in), size=(fan_in, fan_out))
    raise ValueError(f"unknown init {init!r}; known: he, xavier, xavier_normal, lecun")


def normal_moment(f: Callable[..., Any], k: int = 1, **params: Any) -> float:
    r"""$\mathbb E[f(Z)^k]$ for $Z \sim \mathcal N(0, 1)$: $\int f(t)^k\,\varphi(t)\,dt$.

    $k = 1$ says whether an activation is zero-centred (only for $\mathbb E[f(Z)] = 0$ do
    the next layer's inputs average to zero). $k = 2$ sets an initialisation's gain: a
    weight variance of $1/(n_{in}\,\mathbb E[f(Z)^2])$ keeps the pre-activations' variance
    from layer to layer, which for ReLU ($\mathbb E[\mathrm{relu}(Z)^2] = 1/2$) is He's
    $2/n_{in}$. ``params`` go to ``f`` (``normal_moment(act.elu, alpha=2.0)``).

    Adaptive quadrature (``scipy.integrate.quad``) on $(-\infty, 0]$ and $[0, \infty)$
    separately, because the course's kinks sit at 0; relative error about 1e-10 or less
    for every activation of the course (tested against mpmath).
    """
    from scipy.integrate import quad

    def integrand(t: float) -> float:
        return float(f(t, **params)) ** k * np.exp(-0.5 * t * t) / np.sqrt(2.0 * np.pi)

    left, _ = quad(integrand, -np.inf, 0.0, epsabs=1e-13, epsrel=1e-12)
    right, _ = quad(integrand, 0.0, np.inf, epsabs=1e-13, epsrel=1e-12)
    return float(left + right)


@dataclass(repr=False)
class Dense:
    """$z = a_{prev} W + b$, $a = f(z)$: one fully connected layer.

    ``alpha`` is PReLU's learnable slope (a 0-d array, or shape ``(d_out,)``), else None.
    ``forward`` caches ``a_prev``, ``z`` and ``a``; ``backward`` fills ``grads``.
    """

    W: np.ndarray
    b: np.ndarray
    activation: str = "identity"
    params: dict[str, Any] = field(default_factory=dict)
    alpha: np.ndarray | None = None
    grads: dict[str, np.ndarray] = field(default_factory=dict)
    velocity: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        name = self.activation
        self.f = _lookup(act.ACTIVATIONS, name, name, "activation")
        suffix = "_jacobian" if name in VECTOR_ACTIVATIONS else "_grad"
        self.f_grad = _lookup(act.GRADIENTS, name + suffix, name, "activation")

    def _kwargs(self) -> dict[str, Any]:
        return self.params if self.alpha is None else {**self.params, "alpha": self.alpha}

    def parameters(self) -> dict[str, np.ndarray]:
        """The learnable arrays, by name (the arrays themselves, so updates happen in place)."""
        found = {"W": self.W, "b": self.b}
        if self.alpha is not None:
            found["alpha"] = self.alpha
        return found

    def forward(self, a_prev: np.ndarray) -> np.ndarray:
        """Return $a = f(a_{prev} W + b)$, keeping ``a_prev``, ``z`` and ``a`` for backward."""
        self.a_prev = a_prev
        self.z = a_prev @ self.W + self.b
        self.a = self.f(self.z, **self._kwargs())
        return self.a

    def backward(self, da: np.ndarray) -> np.ndarray:
        r"""Take $\partial J/\partial a$, fill ``grads``, return $\partial J/\partial a_{prev}$.

        $dz = da \odot f'(z)$, $dW = a_{prev}^T dz$, $db = \sum_n dz$, $da_{prev} = dz\, W^T$.
        """
        if self.activation in VECTOR_ACTIVATIONS:
            jac = self.f_grad(self.z, **self._kwargs())  # jac[n, i, j] = d a_i / d z_j
            dz = np.einsum("ni,nij->nj", da, jac)
        else:
            dz = da * self.f_grad(self.z, **self._kwargs())
        self.grads["W"] = self.a_prev.T @ dz
        self.grads["b"] = dz.sum(axis=0)
        if self.alpha is not None:
            dalpha = da * act.prelu_grad_alpha(self.z, self.alpha)
            # One slope per unit sums over samples only; one per layer sums over everything.
            axis = 0 if self.alpha.ndim else None
            self.grads["alpha"] = np.asarray(dalpha.sum(axis=axis))
        return dz @ self.W.T


class MLP:
    """A multilayer perceptron trained by SGD with momentum.

    ``sizes`` = ``[d_in, hidden..., d_out]``. ``activation`` is one spec for every hidden
    layer, or a list with one spec per hidden layer. The output after ``output_activation``
    is ``y_pred`` for the loss, so from-logits losses need ``output_activation="identity"``
    and probability losses need ``"sigmoid"`` or ``"softmax"``. Biases start at 0; weights
    are drawn by :func:`init_weights` from ``np.random.default_rng(seed)``, layer by layer.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation: Spec | list[Spec] = "relu",
        output_activation: Spec = "identity",
        loss: Spec = "mse",
        init: str = "he",
        seed: int = 0,
    ) -> None:
        self.sizes = [int(s) for s in sizes]
        n_hidden = len(self.sizes) - 2
        hidden = activation if isinstance(activation, list) else [activation] * n_hidden
        if len(hidden) != n_hidden:
            raise ValueError(f"{len(hidden)} activations for {n_hidden} hidden layers")
        loss_name, self.loss_params = _split(loss)
        self.loss_name = loss_name
        self.loss_fn = _lookup(lss.LOSSES, loss_name, loss_name, "loss")
        self.loss_grad = _lookup(lss.LOSS_GRADIENTS, loss_name + "_grad", loss_name, "loss")
        out_name = _split(output_activation)[0]
        if loss_name in LOGIT_LOSSES and out_name != "identity":
            raise ValueError(f"{loss_name} takes logits: use output_activation='identity'")
        if loss_name in PROB_LOSSES and out_name not in ("sigmoid", "softmax"):
            raise ValueError(
                f"{loss_name} takes probabilities: use output_activation='sigmoid' or "
                "'softmax', or a from-logits loss"
            )
        rng = np.random.default_rng(seed)
        self.layers: list[Dense] = []
        for fan_in, fan_out, spec in zip(
            self.sizes[:-1], self.sizes[1:], [*hidden, output_activation], strict=True
        ):
            name, params = _split(spec)
            alpha = None
            if name == "prelu":
                start, per_unit = params.pop("alpha", 0.25), params.pop("per_unit", False)
                alpha = np.full(fan_out, float(start)) if per_unit else np.array(float(start))
            W = init_weights(fan_in, fan_out, init, rng)
            self.layers.append(Dense(W, np.zeros(fan_out), name, params, alpha))
        self.records: list[dict[str, Any]] = []
        self.grad_norms: list[np.ndarray] = []

    def __repr__(self) -> str:
        names = [layer.activation for layer in self.layers]
        return f"MLP({self.sizes}, activations={names}, loss={self.loss_name!r})"

    def forward(self, X: np.ndarray, record: bool = False) -> np.ndarray:
        """Return ``y_pred`` for the batch ``X`` (N, d_in).

        With ``record=True``, ``self.records[i]`` holds layer i's statistics: ``mean`` and
        ``std`` of its activations, ``zero_fraction`` (entries equal to 0), ``dead_fraction``
        (units that output 0 for every sample of X), and the arrays ``z`` and ``a``.
        """
        a = np.asarray(X, dtype=np.float64)
        for layer in self.layers:
            a = layer.forward(a)
        if record:
            self.records = [
                {
                    "mean": float(layer.a.mean()),
                    "std": float(layer.a.std()),
                    "zero_fraction": float(np.mean(layer.a == 0)),
                    "dead_fraction": float(np.mean(np.all(layer.a == 0, axis=0))),
                    "z": layer.z,
                    "a": layer.a,
                }
                for layer in self.layers
            ]
        return a

    def _targets(self, y: np.ndarray) -> np.ndarray:
        """Shape ``y`` like ``y_pred``: labels (N,) become a column, or one-hot rows if K > 1."""
        y = np.asarray(y)
        if self.loss_name == "sparse_categorical_cross_entropy":
            return y.astype(np.int64)
        y = y.astype(np.float64)
        k = self.sizes[-1]
        if y.ndim == 1 and k == 1:
            return y[:, None]
        if y.ndim == 1 and self.loss_name not in REGRESSION_LOSSES:
            return np.eye(k)[y.astype(np.int64)]
        return y

    def cost(self, X: np.ndarray, y: np.ndarray) -> float:
        r"""$J = \frac1N \sum_n \ell(y_n, \hat y_n)$: the cost of the batch."""
        return float(self.loss_fn(self._targets(y), self.forward(X), **self.loss_params))

    def backward(self, y: np.ndarray) -> None:
        """Backpropagate the model's loss from the last ``forward``; append the layers'
        ``||dJ/dW||`` to ``grad_norms``."""
        self.backward_from(self.loss_grad(self._targets(y), self.layers[-1].a, **self.loss_params))

    def backward_from(self, da: np.ndarray) -> None:
        r"""Backpropagate $\partial J/\partial\hat y$ = ``da`` (N, d_out) from the last ``forward``.

        For a cost the model does not compute itself: an embedding network trained with a
        contrastive or triplet loss on its outputs, for instance. Fills every layer's
        ``grads`` and appends the layers' ``||dJ/dW||`` to ``grad_norms``.
        """
        da = np.asarray(da, dtype=np.float64)
        expected = self.layers[-1].a.shape
        if da.shape != expected:
            raise ValueError(f"da has shape {da.shape}; the last forward output has {expected}")
        for layer in reversed(self.layers):
            da = layer.backward(da)
        norms = [np.linalg.norm(layer.grads["W"]) for layer in self.layers]
        self.grad_norms.append(np.array(norms))

    def parameters(self) -> list[np.ndarray]:
        """Every learnable array, layer by layer (W, b, then alpha for PReLU)."""
        return [p for layer in self.layers for p in layer.parameters().values()]

    def gradients(self) -> list[np.ndarray]:
        """The gradients from the last ``backward``, in the order of ``parameters()``."""
        return [layer.grads[key] for layer in self.layers for key in layer.parameters()]

    def step(self, X: np.ndarray, y: np.ndarray, lr: float = 0.1, momentum: float = 0.9) -> float:
        r"""$v \leftarrow \mu v - \eta\,\partial J/\partial\theta$, $\theta \leftarrow \theta + v$.

        One SGD step on the batch, with $\mu$ = ``momentum`` and $\eta$ = ``lr``. Velocities start
        at 0 and persist across calls. Returns the cost of the batch before the update.
        """
        cost = self.cost(X, y)
        self.backward(y)
        self.apply_gradients(lr=lr, momentum=momentum)
        return cost

    def apply_gradients(self, lr: float = 0.1, momentum: float = 0.9) -> None:
        r"""$v \leftarrow \mu v - \eta\,\partial J/\partial\theta$, $\theta \leftarrow \theta + v$,
        with the gradients of the last ``backward`` or ``backward_from``."""
        for layer in self.layers:
            if not layer.grads:
                raise RuntimeError("no gradients yet: call backward or backward_from first")
            for key, param in layer.parameters().items():
                velocity = layer.velocity.setdefault(key, np.zeros_like(param))
                velocity *= momentum
                velocity -= lr * layer.grads[key]
                param += velocity

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        epochs: int = 100,
        batch_size: int | None = 32,
        lr: float = 0.1,
        momentum: float = 0.9,
        seed: int = 0,
        shuffle: bool = True,
        callback: Callable[[MLP, int], None] | None = None,
    ) -> dict[str, list[float]]:
        """Train with mini-batches (``batch_size=None``: the whole set) for ``epochs`` epochs.

        Batches are shuffled with ``np.random.default_rng(seed)``. Returns a history with
        ``"cost"``, $J$ on the whole of X after each epoch, and for classification
        losses ``"accuracy"``. ``callback(model, epoch)``, if given, runs after each epoch,
        for recording anything else (a PReLU slope, a dead fraction).
        """
        # The matrices are tiny: waking a pool of BLAS threads for each product costs more
        # than the product (about 30% of a lesson's training time on 2 cores).
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):
            return self._fit(X, y, epochs, batch_size, lr, momentum, seed, shuffle, callback)

    def _fit(self, X, y, epochs, batch_size, lr, momentum, seed, shuffle, callback):
        X, y = np.asarray(X, dtype=np.float64), np.asarray(y)
        n = len(X)
        size = n if batch_size is None else batch_size
        rng = np.random.default_rng(seed)
        history: dict[str, list[float]] = {"cost": []}
        if self.loss_name not in REGRESSION_LOSSES:
            history["accuracy"] = []
        for _ in range(epochs):
            order = rng.permutation(n) if shuffle else np.arange(n)
            for start in range(0, n, size):
                batch = order[start : start + size]
                self.step(X[batch], y[batch], lr=lr, momentum=momentum)
            history["cost"].append(self.cost(X, y))
            if "accuracy" in history:
                history["accuracy"].append(self.accuracy(X, y))
            if callback is not None:
                callback(self, len(history["cost"]) - 1)
        return history

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The network's output ``y_pred`` (N, d_out): values, probabilities or logits."""
        return self.forward(X)

    def classify(self, X: np.ndarray) -> np.ndarray:
        """Class labels: argmax for K > 1 outputs; for one output, 0/1 (threshold 0.5 after a
        sigmoid, 0 on logits), or -1/+1 for the hinge loss."""
        out = self.forward(X)
        if out.shape[1] > 1:
            return out.argmax(axis=1)
        if self.loss_name == "hinge":
            return np.where(out[:, 0] > 0, 1, -1)
        threshold = 0.5 if self.layers[-1].activation == "sigmoid" else 0.0
        return (out[:, 0] > threshold).astype(np.int64)

    def accuracy(self, X: np.ndarray, y: np.ndarray) -> float:
        """Fraction of samples whose ``classify`` label equals y (labels or one-hot rows)."""
        y = np.asarray(y)
        labels = y.argmax(axis=1) if y.ndim == 2 and y.shape[1] > 1 else y.ravel()
        return float(np.mean(self.classify(X) == labels))


def dead_fraction(model: MLP, X: np.ndarray) -> float:
    """Fraction of hidden ReLU units that output 0 for every sample of X (pooled over layers).

    Such a unit is *dead*: its pre-activation is <= 0 on every sample, so its weights and
    bias get zero gradient and SGD on X cannot move them. Runs ``model.forward(X)``.
    """
    model.forward(X)
    hidden = [layer for layer in model.layers[:-1] if layer.activation == "relu"]
    if not hidden:
        raise ValueError(f"{model!r} has no hidden ReLU layer")
    dead = sum(int(np.all(layer.a == 0, axis=0).sum()) for layer in hidden)
    return dead / sum(layer.W.shape[1] for layer in hidden)


def silent_fraction(model: MLP, X: np.ndarray) -> float:
    """Fraction of hidden units whose pre-activation is <= 0 for every sample of X.

    For ReLU this is ``dead_fraction``. For any other activation (leaky ReLU, ELU, GELU)
    such a unit is *silent*: it only ever sees the negative side, where its gradient is
    small but, unlike ReLU's, not exactly 0. Runs ``model.forward(X)``.
    """
    model.forward(X)
    hidden = model.layers[:-1]
    if not hidden:
        raise ValueError(f"{model!r} has no hidden layer")
    silent = sum(int(np.all(layer.z <= 0, axis=0).sum()) for layer in hidden)
    return silent / sum(layer.W.shape[1] for layer in hidden)
