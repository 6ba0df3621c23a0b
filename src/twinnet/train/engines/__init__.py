"""Training engines: what differs between NumPy and PyTorch, behind one small interface.

:class:`twinnet.train.Trainer` runs the loop (epochs, steps, counters, history,
callbacks, signals, checkpoints); an engine supplies a *stepper* that does the
arithmetic of one step:

``forward_backward(xb, yb, flag=False) -> (loss, correct, flag)``
    forward, loss, zero the gradients, backward (plus penalties and clipping) on the
    global batch ``(xb, yb)`` (NumPy arrays from ``BatchLoader``); ``loss`` is the
    batch's mean loss and ``correct`` its count of right predictions, both over every
    process; ``flag`` comes back true when any process passed true (how processes agree
    to stop on a signal).
``apply()``
    the optimiser step (skipped when a callback sets ``trainer.skip_step``).
``step(xb, yb) -> loss``
    both at once, for loops without callbacks (the scikit-learn estimators).
``predict(x) -> ndarray``
    outputs in eval mode, as NumPy.
``state_dict()`` / ``load_state_dict(state)``
    weights, optimiser and random-generator states, as arrays and plain values (what
    :func:`twinnet.train.state.save_state` stores in safetensors).
``weights()`` / ``load_weights(d)``
    NumPy copies of the parameters and buffers by ``named_parameters`` name.

and the attributes ``model``, ``optimizer``, ``loss_fn`` (the engine's mean loss, for
diagnostics), ``rank``/``world`` (processes), ``share(values)`` (rank 0's values
everywhere), ``locate_non_finite(xb)`` and ``wrap_scheduler(s)``.

- :mod:`twinnet.train.engines.numpy`: :class:`NumpyStepper`, the NumPy engine.
- :mod:`twinnet.train.engines.torch`: :class:`TorchStepper`, one process or one of N
  data-parallel processes (DistributedDataParallel, collectives inside the stepper).
- :mod:`twinnet.train.engines.ddp`: starting N processes and their collectives.
"""
