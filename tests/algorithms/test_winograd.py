"""Winograd F(m, r) matrices: the 1-D identity against numpy's correlation, F(2,3) and F(4,3)
against Lavin & Gray's published matrices, and the weight transform against its definition."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnncompile.algorithms.winograd import interpolation_points, transform_weights, winograd_matrices

# Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (2016), section 4.1 and 4.2.
LAVIN = {
    (2, 3): dict(
        AT=[[1, 1, 1, 0], [0, 1, -1, -1]],
        G=[[1, 0, 0], [1 / 2, 1 / 2, 1 / 2], [1 / 2, -1 / 2, 1 / 2], [0, 0, 1]],
        BT=[[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
    ),
    (4, 3): dict(
        AT=[[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
        G=[[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
           [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]],
        BT=[[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
            [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]],
    ),
}


def rank_one_terms(AT, G, BT) -> np.ndarray:
    """The a terms AT[:, i] (x) G[i] (x) BT[i] of the bilinear algorithm: what survives rescaling row i."""
    return np.einsum("mi,ir,ia->imra", np.asarray(AT, float), np.asarray(G, float), np.asarray(BT, float))


@pytest.mark.parametrize("m, r", sorted(LAVIN))
def test_matches_lavin_and_gray_up_to_row_scaling(m, r):
    ours = winograd_matrices(m, r)
    published = LAVIN[m, r]
    assert (ours.AT.shape, ours.G.shape, ours.BT.shape) == ((m, m + r - 1), (m + r - 1, r), (m + r - 1,) * 2)
    np.testing.assert_allclose(rank_one_terms(ours.AT, ours.G, ours.BT), rank_one_terms(**published), atol=1e-15)


def test_f4x3_is_exactly_the_published_one():
    ours = winograd_matrices(4, 3)
    for name, published in LAVIN[4, 3].items():
        np.testing.assert_allclose(getattr(ours, name), published, atol=1e-15, err_msg=name)


def test_points_follow_the_documented_order():
    assert [str(p) for p in interpolation_points(9)] == ["0", "1", "-1", "2", "-2", "1/2", "-1/2", "3", "-3"]


@settings(max_examples=30, deadline=None, derandomize=True)
@given(m=st.integers(1, 6), r=st.integers(1, 5), seed=st.integers(0, 2**32 - 1))
def test_one_dimensional_identity_is_correlation(m, r, seed):
    rng = np.random.default_rng(seed)
    d, g = rng.standard_normal(m + r - 1), rng.standard_normal(r)
    f = winograd_matrices(m, r)
    y = f.AT @ ((f.G @ g) * (f.BT @ d))
    want = np.array([sum(d[i + k] * g[k] for k in range(r)) for i in range(m)])
    np.testing.assert_allclose(y, want, rtol=0, atol=1e-12 * max(1.0, np.abs(d).max() * np.abs(g).sum()))


@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_weight_transform_is_g_w_gt_per_channel_pair(m, dtype):
    rng = np.random.default_rng(m)
    w = rng.standard_normal((3, 2, 3, 3)).astype(dtype)
    u = transform_weights(w, m)
    G = winograd_matrices(m, 3).G
    assert u.shape == (m + 2, m + 2, 3, 2) and u.dtype == dtype
    for o in range(3):
        for c in range(2):
            want = G @ w[o, c].astype(np.float64) @ G.T
            np.testing.assert_allclose(u[:, :, o, c], want, rtol=1e-6 if dtype == np.float32 else 1e-14, atol=1e-7)


def test_rejects_non_square_weights():
    with pytest.raises(ValueError, match=r"\(O, C, r, r\)"):
        transform_weights(np.zeros((1, 1, 3, 2)), 2)
