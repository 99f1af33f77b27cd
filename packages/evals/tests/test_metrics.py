import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from cogvx.evals import metrics


def ssim_reference(x: np.ndarray, y: np.ndarray, data_range: float) -> float:
    """Independent SSIM (the skimage gaussian_weights=True formulation): scipy Gaussian
    filter (truncate 3.5 -> 11 taps at sigma 1.5), population covariance, crop 5 px."""
    vals = []
    for c in range(x.shape[-1]):
        a, b = x[..., c].astype(np.float64), y[..., c].astype(np.float64)
        f = lambda z: gaussian_filter(z, sigma=1.5, truncate=3.5)  # noqa: E731
        ma, mb = f(a), f(b)
        saa, sbb, sab = f(a * a) - ma**2, f(b * b) - mb**2, f(a * b) - ma * mb
        c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
        s = ((2 * ma * mb + c1) * (2 * sab + c2)) / ((ma**2 + mb**2 + c1) * (saa + sbb + c2))
        vals.append(s[5:-5, 5:-5].mean())
    return float(np.mean(vals))


def test_psnr_known_mse():
    target = np.zeros((2, 16, 16, 3))
    pred = target + 0.1  # MSE = 0.01 -> 20 dB at data_range 1
    assert metrics.psnr(pred, target) == pytest.approx(20.0, abs=1e-12)
    np.testing.assert_allclose(metrics.psnr_per_frame(pred, target), [20.0, 20.0])
    # data_range 255, error 255/100 -> MSE = (2.55)^2 -> 40 dB
    assert metrics.psnr(target + 2.55, target, data_range=255) == pytest.approx(40.0, abs=1e-9)


def test_psnr_identical_is_inf_and_torch_input():
    x = torch.rand(3, 8, 8, 3)
    assert metrics.psnr(x, x) == float("inf")
    # per-frame mean: frame errors 0.1 and 0.01 -> (20 + 40) / 2
    t = np.zeros((2, 4, 4, 3))
    p = t.copy()
    p[0] += 0.1
    p[1] += 0.01
    assert metrics.psnr(p, t) == pytest.approx(30.0)


def test_ssim_identity_and_constant_closed_form():
    rng = np.random.default_rng(0)
    x = rng.random((2, 24, 20, 3))
    assert metrics.ssim(x, x) == pytest.approx(1.0, abs=1e-12)
    # constant images a, b: sigma terms vanish -> (2ab + C1) / (a^2 + b^2 + C1)
    a, b = 0.3, 0.7
    c1 = 0.01**2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)
    got = metrics.ssim(np.full((16, 16, 3), a), np.full((16, 16, 3), b))
    assert got == pytest.approx(expected, abs=1e-12)


def test_ssim_matches_independent_reference():
    rng = np.random.default_rng(1)
    x = rng.random((3, 33, 29, 3))
    y = np.clip(x + 0.1 * rng.standard_normal(x.shape), 0, 1)
    ref = [ssim_reference(x[t], y[t], 1.0) for t in range(3)]
    np.testing.assert_allclose(metrics.ssim_per_frame(x, y), ref, atol=1e-10)
    x255, y255 = x * 255, y * 255
    assert metrics.ssim(x255, y255, data_range=255) == pytest.approx(np.mean(ref), abs=1e-10)


def test_flicker_closed_form():
    v = np.zeros((4, 8, 8, 3))
    v[1::2] = 0.25  # alternating: every adjacent pair differs by 0.25 everywhere
    np.testing.assert_allclose(metrics.adjacent_frame_l1_per_pair(v), [0.25] * 3)
    assert metrics.adjacent_frame_l1(np.zeros((3, 4, 4, 3))) == 0.0


def test_lpips_pluggable_network():
    x = np.random.default_rng(0).random((5, 8, 8, 3))
    y = x * 0.5
    calls = []

    def net(a, b):
        calls.append(a.shape[0])
        assert a.min() >= -1 and a.max() <= 1
        return (a - b).abs().mean(dim=(1, 2, 3), keepdim=True)  # [N,1,1,1] like lpips

    d = metrics.lpips(x, y, net, batch_size=2)
    assert calls == [2, 2, 1]
    np.testing.assert_allclose(d, np.abs(2 * x - 2 * y).mean(axis=(1, 2, 3)), rtol=1e-6)


@pytest.mark.parametrize(
    ("pred", "target", "match"),
    [
        (np.zeros((4, 4, 3)), np.zeros((4, 5, 3)), "same shape"),
        (np.zeros((4, 4)), np.zeros((4, 4)), r"\[T,H,W,C\]"),
        ([[0.0]], [[0.0]], "numpy array or torch tensor"),
        (np.zeros((0, 4, 4, 3)), np.zeros((0, 4, 4, 3)), "at least one frame"),
    ],
)
def test_bad_inputs(pred, target, match):
    with pytest.raises((ValueError, TypeError), match=match):
        metrics.psnr(pred, target)


def test_ssim_too_small_and_bad_range():
    with pytest.raises(ValueError, match="at least 11x11"):
        metrics.ssim(np.zeros((8, 8, 3)), np.zeros((8, 8, 3)))
    with pytest.raises(ValueError, match="data_range"):
        metrics.ssim(np.zeros((12, 12, 3)), np.zeros((12, 12, 3)), data_range=0)
