"""scikit-learn estimators on top of twinnet: ``MLPClassifier`` and ``MLPRegressor``.

    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from twinnet.sklearn import MLPClassifier

    clf = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(100,)))
    clf.fit(X_train, y_train).score(X_test, y_test)
    net = clf[-1].model_          # the fitted twinnet nn.Sequential (outputs logits)

They follow scikit-learn's estimator conventions (parameters stored by ``__init__``
and checked by ``fit``, ``clone``/``get_params``, input validation with scikit-learn's
own utilities and therefore its error messages, ``partial_fit``, ``warm_start``,
``early_stopping``, ``sample_weight``) and pass ``check_estimator``. Parameter names
and defaults are those of ``sklearn.neural_network.MLPClassifier`` where the concept is
the same, plus twinnet's own (``dropout``, ``norm``, ``weight_decay``, ``schedule``,
``dtype``, ``init``). Requires scikit-learn >= 1.6 (``validate_data``, ``__sklearn_tags__``).

What is optimised (see ``_objective.py``), per mini-batch with weights w_i, S = sum w_i:

    J = sum_i w_i l_i / S + alpha / (2 S) * sum_layers ||W||^2

- l_i is scikit-learn's: softmax cross-entropy (multiclass), sigmoid cross-entropy
  summed over the outputs (binary, multilabel), half squared error summed over the
  outputs (regression; scikit-learn follows this gradient but reports the loss
  averaged over the outputs, so with several outputs our ``loss_curve_`` is higher).
- ``alpha`` means what it means in scikit-learn: the L2 penalty is divided by the
  batch's total weight (its size without sample_weight), on Linear weights only.
- ``sample_weight``: twinnet's losses are batch means, so the estimator scales row i
  of dL/d(output) by ``w_i * B / S``; the loss value uses per-example losses. With a
  full batch, integer weights give exactly the gradient of the repeated data set and
  zero-weight rows are ignored (up to float rounding); with mini-batches the batches
  differ, so the two agree only approximately. A batch whose weights are all zero is
  skipped; the epoch loss is the weight-averaged batch loss.

Differences from scikit-learn's MLP: no "lbfgs" solver and no ``learning_rate`` /
``power_t`` (use ``schedule``); Adam adds eps after bias correction (torch); the
default init is scikit-learn's (Glorot-uniform weights and biases); unequal ``sample_weight`` with ``norm="batch"``
is refused;
``predict_proba`` returns float64 while the network runs in float32 by default.
"""

from __future__ import annotations

try:
    from sklearn.utils.validation import validate_data  # noqa: F401 (new in 1.6)
except ImportError as err:  # pragma: no cover - depends on the installed version
    raise ImportError(
        "twinnet.sklearn needs scikit-learn >= 1.6 (validate_data, __sklearn_tags__); "
        "upgrade with: pip install -U scikit-learn"
    ) from err

from twinnet.sklearn._estimators import MLPClassifier, MLPRegressor  # noqa: E402

__all__ = ["MLPClassifier", "MLPRegressor"]
