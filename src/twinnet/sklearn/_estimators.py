"""MLPClassifier and MLPRegressor: targets in, predictions out; BaseMLP trains."""

from __future__ import annotations

import numpy as np
from scipy import special
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.multiclass import check_classification_targets, unique_labels
from sklearn.utils.validation import column_or_1d, validate_data

from twinnet.sklearn._base import BaseMLP, _other_float

_PARAMS_DOC = """
    Parameters (scikit-learn's names where the concept is the same)
    ----------------------------------------------------------------
    hidden_layer_sizes : int or tuple of int, default=(100,)
        Units of each hidden layer; ``()`` gives a linear model.
    activation : {"relu", "logistic", "tanh", "identity", "sigmoid", "leaky_relu",
        "gelu", "gelu_tanh", "silu"}, default="relu"
        Hidden-layer nonlinearity ("logistic" is scikit-learn's name for "sigmoid").
    solver : {"adam", "sgd", "adamw", "rmsprop", "adagrad"}, default="adam"
        The ``twinnet.optim`` optimiser (torch.optim semantics). There is no "lbfgs".
    alpha : float >= 0, default=1e-4
        L2 penalty exactly as scikit-learn's: ``alpha / (2 S) * sum ||W||^2`` per batch,
        S the batch's total sample weight (its size without weights), on Linear
        weights only (not biases or normalisation parameters).
    batch_size : int or "auto", default="auto"
        Examples per step; "auto" is ``min(200, n_samples)``.
    learning_rate_init : float > 0, default=1e-3
        The optimiser's learning rate (the peak with ``schedule="onecycle"``).
    max_iter : int >= 1, default=200
        Maximum number of epochs.
    shuffle : bool, default=True
        Reshuffle the training data every epoch.
    random_state : int, RandomState or None, default=None
        Seeds the weights, the shuffles, the dropout masks and the early-stopping split.
    tol, n_iter_no_change : default=1e-4, 10
        Stop when the training loss (or, with ``early_stopping``, the validation score)
        has not improved by ``tol`` for ``n_iter_no_change`` consecutive epochs. Reaching
        ``max_iter`` first raises a ``ConvergenceWarning``.
    verbose : bool, default=False
        Print the loss (and validation score) every epoch.
    warm_start : bool, default=False
        ``fit`` continues from the fitted weights (with a fresh optimiser state, as
        scikit-learn does) instead of re-initialising.
    momentum, nesterovs_momentum : default=0.9, True
        SGD momentum and Nesterov momentum (``solver="sgd"`` only).
    early_stopping, validation_fraction : default=False, 0.1
        Hold out ``validation_fraction`` of the data (stratified for single-output
        classification), score it after every epoch into ``validation_scores_``, stop
        on its plateau and keep the best epoch's weights.
    beta_1, beta_2, epsilon : default=0.9, 0.999, 1e-8
        Adam/AdamW betas; ``epsilon`` is the eps of adam, adamw, rmsprop and adagrad.
    dropout : float in [0, 1), default=0.0
        Dropout after every hidden activation (training only).
    norm : {None, "batch", "layer"}, default=None
        BatchNorm1d or LayerNorm before every hidden activation. "batch" refuses
        unequal ``sample_weight``: the batch statistics cannot see the weights.
    weight_decay : float >= 0, default=0.0
        The optimiser's weight decay on Linear weights: decoupled for "adamw", coupled
        (torch semantics, ``g += wd * w``, not divided by the batch weight) otherwise.
    schedule : {None, "constant", "cosine", "onecycle", "plateau"}, default=None
        Learning-rate schedule over the ``max_iter`` epochs of a fit: cosine annealing
        or 1cycle stepped per batch, or ReduceLROnPlateau(factor 0.1) on the epoch loss.
        1cycle peaks at ``learning_rate_init`` and cycles only a momentum the solver
        has: sgd's ``momentum`` or adam/adamw's ``beta_1`` when > 0, between that value
        (start and end) and 0.1 below it (at the peak); rmsprop, adagrad and a momentum
        of 0 are left alone. Not available with ``partial_fit``.
    dtype : {"float32", "float64"}, default="float32"
        Precision of the network; inputs are cast to it once per fit / predict.
    init : str, default="auto"
        "auto" is "sklearn" (scikit-learn's Glorot-uniform weights and biases), which
        matched or beat He on every data set of benchmarks/sklearn_init.md; or any
        ``nn.Linear`` init ("kaiming_uniform" for He).

    Attributes
    ----------
    model_ : twinnet.nn.Sequential
        The fitted network (eval mode); use it with twinnet's diagnostics, gradcheck or
        ``twinnet.twin.to_torch``. It outputs logits (classifier) or predictions.
    loss_curve_, loss_, best_loss_ : the objective per epoch (penalty included).
    validation_scores_, best_validation_score_ : with early_stopping, else None.
    n_iter_ : epochs run by the last fit (1 per partial_fit call).
    t_ : training examples seen over all calls.
    n_features_in_, feature_names_in_, n_outputs_, n_layers_ : as in scikit-learn.
    coefs_, intercepts_ : copies of the Linear weights (fan_in, fan_out) and biases;
        assigning lists sets the weights the next partial_fit (or warm-started fit, or
        predict) uses, as in scikit-learn's tests.
"""


class MLPClassifier(ClassifierMixin, BaseMLP):
    """Multi-layer perceptron classifier trained by twinnet (scikit-learn API).

    Binary targets use one logit and sigmoid cross-entropy, multiclass targets softmax
    cross-entropy, and multilabel targets (an indicator matrix) one sigmoid output per
    label. Labels may be any type ``LabelBinarizer`` accepts (strings included).
    Attribute ``classes_``: the labels, sorted.
    """

    __doc__ = (__doc__ or "") + _PARAMS_DOC

    def _validate_input(self, X, y, incremental, reset, dtype):
        X, y = validate_data(
            self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
            dtype=[dtype, _other_float(dtype)], reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._set_classes(LabelBinarizer().fit(y))
        else:
            classes = unique_labels(y)
            if self.warm_start and not incremental:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in the "
                        f"previous call to fit. Previously got {self.classes_}, `y` has {classes}"
                    )
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(
                    f"`y` has classes not in `self.classes_`. `self.classes_` has "
                    f"{self.classes_}. 'y' has {classes}."
                )
        lb = self._label_binarizer
        if lb.y_type_ == "multiclass":
            # (n,) class indices for CrossEntropyLoss
            return X, y, np.searchsorted(self.classes_, y), "multiclass", len(self.classes_)
        target = lb.transform(y).astype(dtype)  # (n, 1) binary or (n, K) indicator
        head = "multilabel" if lb.y_type_.startswith("multilabel") else "binary"
        return X, y, target, head, target.shape[1]

    def _set_classes(self, lb: LabelBinarizer) -> None:
        if len(lb.classes_) < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes in the data, but "
                f"the data contains only one class: {lb.classes_.tolist()[0]!r}"
            )
        self._label_binarizer = lb
        self.classes_ = lb.classes_

    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over (X, y), continuing from the current weights and optimiser state.

        ``classes`` (every label of the whole problem) is required on the first call,
        as in scikit-learn; later batches need not contain every class.
        """
        first = self._check_partial_fit_first_call(classes)
        if first:
            from sklearn.utils.multiclass import type_of_target

            lb = LabelBinarizer()
            lb.fit(y if type_of_target(y).startswith("multilabel") else classes)
            self._set_classes(lb)
        return self._fit(X, y, sample_weight, incremental=True)

    def _check_partial_fit_first_call(self, classes) -> bool:
        """True on the first partial_fit call (``classes`` required), as scikit-learn's."""
        if getattr(self, "classes_", None) is None and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        if classes is not None:
            if getattr(self, "classes_", None) is not None:
                if not np.array_equal(self.classes_, unique_labels(classes)):
                    raise ValueError(
                        f"`classes={classes!r}` is not the same as on last call to "
                        f"partial_fit, was: {self.classes_!r}"
                    )
                return False
            return True
        return False

    def _labels(self, z: np.ndarray):
        # argmax of the logits (multiclass) or logit > 0, i.e. probability > 1/2
        return self._label_binarizer.inverse_transform(z, threshold=0.0)

    def _score_outputs(self, z, y, sample_weight) -> float:
        return accuracy_score(y, self._labels(z), sample_weight=sample_weight)

    def predict(self, X):
        """Predicted labels (n_samples,), or an indicator matrix for multilabel targets."""
        return self._labels(self._forward(self._validate_X(X)))

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities (n_samples, n_classes) in float64, columns as ``classes_``.

        Multilabel: the independent probability of each label (rows need not sum to 1).
        """
        z = self._forward(self._validate_X(X)).astype(np.float64)
        if self._head == "multiclass":
            return special.softmax(z, axis=1)
        p = special.expit(z)
        return np.hstack([1 - p, p]) if self._head == "binary" else p

    def predict_log_proba(self, X) -> np.ndarray:
        """log of ``predict_proba``, computed stably from the logits."""
        z = self._forward(self._validate_X(X)).astype(np.float64)
        if self._head == "multiclass":
            return special.log_softmax(z, axis=1)
        if self._head == "binary":
            return np.hstack([special.log_expit(-z), special.log_expit(z)])
        return special.log_expit(z)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, BaseMLP):
    """Multi-layer perceptron regressor trained by twinnet (scikit-learn API).

    Minimises half the squared error (scikit-learn's ``squared_error``) with a linear
    output layer; ``y`` may have several columns (multi-output).
    """

    __doc__ = (__doc__ or "") + _PARAMS_DOC

    def _validate_input(self, X, y, incremental, reset, dtype):
        X, y = validate_data(
            self, X, y, accept_sparse=["csr", "csc"], multi_output=True, y_numeric=True,
            dtype=[dtype, _other_float(dtype)], reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        target = y.reshape(y.shape[0], -1).astype(dtype)  # (n, K)
        return X, y, target, "regression", target.shape[1]

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y), continuing from the current weights and optimiser state."""
        return self._fit(X, y, sample_weight, incremental=True)

    @staticmethod
    def _values(z: np.ndarray) -> np.ndarray:
        return z.ravel() if z.shape[1] == 1 else z

    def _score_outputs(self, z, y, sample_weight) -> float:
        if not np.isfinite(z).all():
            return np.nan
        return r2_score(y, self._values(z), sample_weight=sample_weight)

    def predict(self, X) -> np.ndarray:
        """Predictions (n_samples,) or (n_samples, n_outputs), as float64.

        (The network computes in its ``dtype``; the result is returned in float64, as
        scikit-learn expects of a regressor.)
        """
        return self._values(self._forward(self._validate_X(X)).astype(np.float64))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
