"""BaseMLP: what MLPClassifier and MLPRegressor share (parameters, model, training loop).

The loop is scikit-learn's ``_fit_stochastic`` (same epochs, batches, convergence
rule, early stopping and attributes), with twinnet doing the work: ``model_`` is a
``twinnet.nn.Sequential`` built by ``twinnet.models.build_mlp``, the gradients come
from its hand-written backward, the update from a ``twinnet.optim`` optimiser.
Subclasses provide the target handling (``_validate_input``), predictions and the
validation score.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from twinnet import nn, optim
from twinnet.sklearn._model import _Batches, _other_float, backward_params, build_model
from twinnet.sklearn._objective import Objective
from twinnet.sklearn._params import Settings, resolve, solver_hyperparameters
from twinnet.sklearn._weights import WeightsMixin

# rows per forward pass at predict time (bounds the memory the layers' caches hold)
PREDICT_CHUNK = 4096


class BaseMLP(WeightsMixin, BaseEstimator):
    """Shared implementation; use :class:`MLPClassifier` or :class:`MLPRegressor`."""

    # init="auto": scikit-learn's Glorot-uniform weights and biases, which matched or beat
    # He (the output layer included) on every data set of benchmarks/sklearn_init.md
    _auto_init = "sklearn"

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=1e-4,
        batch_size="auto",
        learning_rate_init=1e-3,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        dropout=0.0,
        norm=None,
        weight_decay=0.0,
        schedule=None,
        dtype="float32",
        init="auto",
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.dropout = dropout
        self.norm = norm
        self.weight_decay = weight_decay
        self.schedule = schedule
        self.dtype = dtype
        self.init = init

    # -- hooks for the subclasses -----------------------------------------------------------
    def _validate_input(self, X, y, incremental: bool, reset: bool, dtype: np.dtype):
        """Return (X, y as validated, training target, head name, number of outputs)."""
        raise NotImplementedError

    def _score_outputs(self, z: np.ndarray, y, sample_weight) -> float:
        """The validation score (accuracy or R^2) of network outputs ``z`` against ``y``."""
        raise NotImplementedError

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, X, y, sample_weight=None):
        """Fit the network to ``X`` (n_samples, n_features) and targets ``y``.

        ``sample_weight`` (n_samples,), optional, non-negative: example i's loss counts
        ``w_i`` times (see ``twinnet.sklearn``'s module docstring). With
        ``warm_start=True`` a fitted network continues from its weights. Returns self.
        """
        return self._fit(X, y, sample_weight, incremental=False)

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "model_")

    def _fit(self, X, y, sample_weight, incremental: bool):
        settings = resolve(self)
        if incremental:
            if self.early_stopping:
                raise ValueError("partial_fit does not support early_stopping=True")
            if self.schedule not in (None, "constant"):
                raise ValueError(
                    f"partial_fit does not support schedule={self.schedule!r} (a schedule needs "
                    "the total number of steps); use fit, or schedule=None"
                )
        first_pass = not hasattr(self, "model_") or (not self.warm_start and not incremental)
        X, y, target, head, n_outputs = self._validate_input(
            X, y, incremental, reset=first_pass, dtype=settings.dtype
        )
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X, dtype=np.float64, ensure_non_negative=True
            )
        X = (
            X.tocsr().astype(settings.dtype)
            if sp.issparse(X)
            else X.astype(settings.dtype, copy=False)
        )
        if settings.norm == "batch" and sample_weight is not None and np.ptp(sample_weight) > 0:
            raise ValueError(
                "sample_weight with norm='batch' is not supported: BatchNorm's batch mean "
                "and variance do not see the weights, so a weighted row would not count as "
                "that many repeated rows; use norm='layer' or None (or equal weights)"
            )
        if settings.norm == "batch" and X.shape[0] < 2:
            raise ValueError(f"norm='batch' needs at least 2 training samples, got {X.shape[0]}")
        rs = check_random_state(self.random_state)

        if first_pass:
            self._initialize(settings, X.shape[1], n_outputs, head, rs)
            if not (incremental or self.warm_start):
                self._drop_assigned_weights()  # fit starts afresh, as scikit-learn's
        else:
            if settings.architecture != self._architecture:
                raise ValueError(
                    "warm_start and partial_fit continue training the same network, but "
                    "hidden_layer_sizes, activation, dtype, norm, dropout or init changed "
                    "since it was built; refit with warm_start=False"
                )
            if n_outputs != self.n_outputs_ or head != self._head:
                raise ValueError(
                    f"y has {n_outputs} output(s) of kind {head!r}, but the network was built "
                    f"for {self.n_outputs_} of kind {self._head!r}"
                )
        if self._apply_assigned_weights():
            self._best_state = self.model_.state_dict()
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = self._make_optimizer()
        self._fit_stochastic(X, y, target, sample_weight, rs, incremental)

        # diverged: non-finite weights, or a non-finite loss that early stopping did not undo
        diverged = not math.isfinite(self.loss_) and not self.early_stopping
        if diverged or not all(np.isfinite(p.data).all() for p in self.model_.parameters()):
            raise ValueError(
                "Solver produced non-finite parameter weights. The input data may"
                " contain large values and need to be preprocessed."
            )
        return self

    def _initialize(self, settings: Settings, n_features: int, n_outputs: int, head: str, rs):
        seed = int(rs.randint(np.iinfo(np.int32).max))
        self.model_ = build_model(settings, n_features, n_outputs, seed)
        self._architecture = settings.architecture
        self._head = head
        # what turns the network's outputs into predictions (the loss fuses it in training)
        self.out_activation_ = {"multiclass": "softmax", "regression": "identity"}.get(
            head, "logistic"
        )
        self.n_outputs_ = n_outputs
        self.n_layers_ = len(settings.hidden) + 2
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_curve_ = []
        self._no_improvement_count = 0
        self._best_state = self.model_.state_dict()
        if self.early_stopping:
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.best_loss_ = np.inf
            self.validation_scores_ = None
            self.best_validation_score_ = None

    def _make_optimizer(self) -> optim.Optimizer:
        # weight_decay acts on the Linear weights only (not biases or norm parameters)
        groups = optim.param_groups(self.model_, self.weight_decay)
        return optim.create(self.solver, groups, **solver_hyperparameters(self))

    def _cycled_momentum(self) -> dict:
        """OneCycleLR's momentum settings: cycle only a momentum the user's optimiser has
        (sgd with momentum > 0: ``momentum``; adam/adamw with beta_1 > 0: ``beta_1``),
        between that value (at the start and end) and 0.1 below it (at the peak lr), as
        torch's 0.95/0.85 default; rmsprop, adagrad and momentum 0 keep theirs."""
        group = self._optimizer.param_groups[0]
        top = group["betas"][0] if "betas" in group else group.get("momentum", 0.0)
        if not top > 0:
            return {"cycle_momentum": False}
        return {"max_momentum": top, "base_momentum": max(0.0, top - 0.1)}

    def _make_schedule(self, steps: int):
        opt = self._optimizer
        if self.schedule == "cosine":
            return optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
        if self.schedule == "onecycle":
            return optim.lr_scheduler.OneCycleLR(
                opt, max_lr=self.learning_rate_init, total_steps=steps, **self._cycled_momentum()
            )
        if self.schedule == "plateau":
            patience = 5 if self.n_iter_no_change == math.inf else int(self.n_iter_no_change) // 2
            return optim.lr_scheduler.ReduceLROnPlateau(
                opt, factor=0.1, patience=patience, threshold=self.tol, threshold_mode="abs"
            )
        return None

    def _fit_stochastic(self, X, y, target, sample_weight, rs, incremental: bool):
        early_stopping = self.early_stopping
        if early_stopping:
            # same split as scikit-learn (stratified for single-output classification)
            stratify = y if self._head in ("binary", "multiclass") else None
            idx_train, idx_val = train_test_split(
                np.arange(X.shape[0]),
                random_state=rs,
                test_size=self.validation_fraction,
                stratify=stratify,
            )
            if idx_val.shape[0] < 2:
                raise ValueError(
                    "The validation set is too small. Increase 'validation_fraction' "
                    "or the size of your dataset."
                )
            X_val, y_val = X[idx_val], y[idx_val]
            sw_val = None if sample_weight is None else sample_weight[idx_val]
            X, target = X[idx_train], target[idx_train]
            sample_weight = None if sample_weight is None else sample_weight[idx_train]
            if self.validation_scores_ is None:  # early_stopping switched on for a warm start
                self.validation_scores_, self.best_validation_score_ = [], -np.inf
        elif self.best_loss_ is None:
            self.best_loss_ = np.inf

        n = X.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n)
        else:
            if self.batch_size > n:
                warnings.warn(
                    "Got `batch_size` less than 1 or larger than sample size. It is going to "
                    "be clipped",
                    stacklevel=3,
                )
            batch_size = int(np.clip(self.batch_size, 1, n))
        batches = _Batches(X, target, sample_weight, batch_size, merge_single=self.norm == "batch")
        shuffler = np.random.default_rng(int(rs.randint(np.iinfo(np.int32).max)))

        model, opt = self.model_, self._optimizer
        objective = Objective(self._head, self.n_outputs_, self.alpha)
        weights = [m.weight for m in model.modules() if isinstance(m, nn.Linear)]
        schedule = None if incremental else self._make_schedule(self.max_iter * len(batches.bounds))
        per_batch = schedule is not None and self.schedule != "plateau"

        model.train()
        self.n_iter_ = 0
        try:
            for _ in range(self.max_iter):
                perm = shuffler.permutation(n) if self.shuffle else None
                total_loss = total_weight = 0.0
                for xb, tb, wb in batches.epoch(perm):
                    if wb is not None and not wb.any():
                        continue  # every weight is 0: nothing to learn from this batch
                    opt.zero_grad()
                    z = model(xb)  # (B, K)
                    loss, grad, weight = objective(z, tb, wb)
                    backward_params(model, grad)
                    loss += objective.penalty(weights, weight)
                    opt.step()
                    if per_batch:
                        schedule.step()
                    total_loss += loss * weight
                    total_weight += weight
                self.n_iter_ += 1
                self.t_ += n
                self.loss_ = total_loss / total_weight if total_weight > 0 else 0.0
                self.loss_curve_.append(self.loss_)
                if self.verbose:
                    print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
                if not math.isfinite(self.loss_):
                    break  # diverged: nothing more to learn (fit reports it)
                if early_stopping:
                    self._update_no_improvement_count(X_val, y_val, sw_val)
                else:
                    self._update_no_improvement_count(None, None, None)
                if self.schedule == "plateau" and schedule is not None:
                    schedule.step(self.loss_)
                if self._no_improvement_count > self.n_iter_no_change:
                    if self.verbose:
                        what = "Validation score" if early_stopping else "Training loss"
                        print(
                            f"{what} did not improve more than tol={self.tol:f} for "
                            f"{self.n_iter_no_change} consecutive epochs. Stopping."
                        )
                    break
                if incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    warnings.warn(
                        f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached "
                        "and the optimization hasn't converged yet.",
                        ConvergenceWarning,
                        stacklevel=3,
                    )
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.", stacklevel=3)
        if early_stopping:
            model.load_state_dict(self._best_state)  # restore the best validation epoch
        model.eval()

    def _update_no_improvement_count(self, X_val, y_val, sw_val) -> None:
        if X_val is not None:
            score = self._score_outputs(self._forward(X_val), y_val, sw_val)
            self.model_.train()
            self.validation_scores_.append(score)
            if self.verbose:
                print(f"Validation score: {score:f}")
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_state = self.model_.state_dict()
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    # -- inference -------------------------------------------------------------------------
    def _validate_X(self, X):
        """Validate X as scikit-learn's MLP does; cast it to the network's dtype."""
        check_is_fitted(self)
        self._apply_assigned_weights()
        dtype = self.model_.parameters()[0].data.dtype
        X = validate_data(
            self, X, accept_sparse=["csr", "csc"], reset=False, dtype=[dtype, _other_float(dtype)]
        )
        return X.tocsr().astype(dtype) if sp.issparse(X) else X.astype(dtype, copy=False)

    def _forward(self, X) -> np.ndarray:
        """Network outputs (n, K) in eval mode, PREDICT_CHUNK rows at a time."""
        model = self.model_.eval()
        n = X.shape[0]
        if n <= PREDICT_CHUNK and not sp.issparse(X):
            return model(X)
        out = np.empty((n, self.n_outputs_), dtype=self.model_.parameters()[0].data.dtype)
        for lo in range(0, n, PREDICT_CHUNK):
            xb = X[lo : lo + PREDICT_CHUNK]
            out[lo : lo + PREDICT_CHUNK] = model(xb.toarray() if sp.issparse(xb) else xb)
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags
