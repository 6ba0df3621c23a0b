"""Where gradients and Adam's moments live (twinnet.nn.placement): a quarter page apart
from their parameter, whoever creates them, and never a change in value."""

from __future__ import annotations

import numpy as np
import pytest

from twinnet import nn, optim
from twinnet.nn.parameter import Parameter
from twinnet.nn.placement import PAGE, QUARTER, zeros_beside


def page_offset(a: np.ndarray, ref: np.ndarray) -> int:
    """Bytes from ref's first byte to a's, modulo one page."""
    return (a.ctypes.data - ref.ctypes.data) % PAGE


@pytest.mark.parametrize("shape", [(1,), (3,), (256, 512), (7, 5, 3)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("slot", [0, 1, 2, 3])
def test_zeros_beside_is_a_zeroed_array_at_the_asked_offset(shape, dtype, slot):
    ref = np.ones(shape, dtype)[...]  # wherever the allocator put it
    a = zeros_beside(ref, slot)
    assert a.shape == ref.shape and a.dtype == ref.dtype
    assert a.flags.c_contiguous and a.flags.writeable and a.flags.aligned
    assert not np.shares_memory(a, ref)
    assert np.all(a == 0)
    assert page_offset(a, ref) == slot * QUARTER


def test_zeros_beside_follows_a_misaligned_reference():
    # a view starting 4 bytes into a buffer: the offset is kept relative to it
    ref = np.zeros(1001, np.float32)[1:]
    for slot in range(4):
        assert page_offset(zeros_beside(ref, slot), ref) == slot * QUARTER


@pytest.mark.parametrize("slot", [-1, 4, 1.5, None])
def test_zeros_beside_refuses_a_slot_that_is_not_a_quarter(slot):
    with pytest.raises(ValueError, match="slot must be 0, 1, 2 or 3"):
        zeros_beside(np.zeros(3), slot)


def test_a_parameters_gradient_sits_a_quarter_page_after_its_data():
    for shape in [(512, 784), (256, 512), (10,)]:
        p = Parameter(np.ones(shape, np.float32))
        assert page_offset(p.grad, p.data) == QUARTER
        p.zero_grad()
        assert page_offset(p.grad, p.data) == QUARTER  # zero_grad keeps the array


def adam_trained(model_seed: int, steps: int, opt_cls=optim.Adam):
    model = nn.Sequential(nn.Linear(20, 16, rng=model_seed), nn.ReLU(), nn.Linear(16, 3, rng=1))
    opt = opt_cls(model.parameters(), lr=1e-2)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        opt.zero_grad()
        for p in model.parameters():
            p.grad[...] = rng.normal(size=p.shape)
        opt.step()
    return model, opt


def test_adams_moments_sit_two_and_three_quarters_after_the_weights():
    model, opt = adam_trained(0, 2)
    for p in model.parameters():
        state = opt.state[p]
        assert page_offset(state["exp_avg"], p.data) == 2 * QUARTER
        assert page_offset(state["exp_avg_sq"], p.data) == 3 * QUARTER


def test_loaded_moments_are_placed_as_the_update_places_them_and_resume_exactly():
    model, opt = adam_trained(0, 3)
    saved = opt.state_dict()
    fresh_model, fresh = adam_trained(0, 0)
    fresh_model.load_state_dict(model.state_dict())
    fresh.load_state_dict(saved)
    for p in fresh_model.parameters():
        state = fresh.state[p]
        assert page_offset(state["exp_avg"], p.data) == 2 * QUARTER
        assert page_offset(state["exp_avg_sq"], p.data) == 3 * QUARTER
    # and the values are the saved ones: both continue identically
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    for (m, o, rng) in ((model, opt, rng_a), (fresh_model, fresh, rng_b)):
        o.zero_grad()
        for p in m.parameters():
            p.grad[...] = rng.normal(size=p.shape)
        o.step()
    for a, b in zip(model.parameters(), fresh_model.parameters(), strict=True):
        assert np.array_equal(a.data, b.data)


def test_placement_changes_no_value():
    # the same updates with the arrays placed by chance (plain np.zeros) give the same bits
    placed_model, placed = adam_trained(0, 5)
    model = nn.Sequential(nn.Linear(20, 16, rng=0), nn.ReLU(), nn.Linear(16, 3, rng=1))
    opt = optim.Adam(model.parameters(), lr=1e-2)
    rng = np.random.default_rng(0)
    for step in range(5):
        opt.zero_grad()
        for p in model.parameters():
            if step == 0:
                p.grad = np.zeros_like(p.data)  # an unplaced gradient array
            p.grad[...] = rng.normal(size=p.shape)
        opt.step()
        if step == 0:
            for p in model.parameters():
                for k in ("exp_avg", "exp_avg_sq"):
                    opt.state[p][k] = opt.state[p][k].copy()  # unplaced moments
    for a, b in zip(model.parameters(), placed_model.parameters(), strict=True):
        assert np.array_equal(a.data, b.data)
