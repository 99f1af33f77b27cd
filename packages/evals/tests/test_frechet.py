import numpy as np
import pytest
import torch

from cogvx.evals.frechet import (
    FeatureStats,
    TorchScriptVideoFeatures,
    frechet_distance,
    fvd,
    fvd_preprocess,
)


@pytest.mark.parametrize("method", ["scipy", "symmetric"])
def test_diagonal_gaussians_closed_form(method):
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    v1, v2 = rng.uniform(0.1, 3, 6), rng.uniform(0.1, 3, 6)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(v1 + v2 - 2 * np.sqrt(v1 * v2))
    got = frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2), method=method)
    assert got == pytest.approx(expected, rel=1e-10, abs=1e-10)


def test_full_covariance_methods_agree_and_symmetry():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    s1, s2 = a @ a.T + 0.1 * np.eye(5), b @ b.T + 0.1 * np.eye(5)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    d1 = frechet_distance(mu1, s1, mu2, s2)
    assert d1 == pytest.approx(frechet_distance(mu1, s1, mu2, s2, method="symmetric"), rel=1e-9)
    assert d1 == pytest.approx(frechet_distance(mu2, s2, mu1, s1), rel=1e-9)
    # 1-D: (m1-m2)^2 + (s1 - s2)^2 with standard deviations s
    assert frechet_distance([0.0], [[4.0]], [3.0], [[1.0]]) == pytest.approx(9 + (2 - 1) ** 2)


def test_identical_sets_zero_and_stats():
    x = np.random.default_rng(2).normal(size=(50, 8))
    mu, cov = FeatureStats.of(x).mean_cov()
    np.testing.assert_allclose(mu, x.mean(0))
    np.testing.assert_allclose(cov, np.cov(x, rowvar=False), atol=1e-12)
    _, biased = FeatureStats.of(x).mean_cov(unbiased=False)
    np.testing.assert_allclose(biased, cov * 49 / 50, atol=1e-12)
    assert abs(frechet_distance(mu, cov, mu, cov)) < 1e-8
    # streaming in chunks equals one shot
    s = FeatureStats()
    for i in range(0, 50, 7):
        s.append(x[i : i + 7])
    np.testing.assert_allclose(s.mean_cov()[1], cov, atol=1e-12)
    with pytest.raises(ValueError, match="dimension"):
        s.append(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="at least 2"):
        FeatureStats.of(x[:1]).mean_cov()


class TinyVideoNet(torch.nn.Module):
    """A seeded Conv3d feature extractor standing in for I3D."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv3d(3, 8, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).mean(dim=(2, 3, 4))


def test_fvd_end_to_end(tmp_path):
    rng = np.random.default_rng(3)
    real = [rng.integers(0, 256, (16, 40, 48, 3), dtype=np.uint8) for _ in range(12)]
    dark = [(v // 4).astype(np.uint8) for v in real]
    path = tmp_path / "i3d.pt"
    torch.jit.save(torch.jit.script(TinyVideoNet()), str(path))
    net = TorchScriptVideoFeatures.from_local(path)
    same = fvd(real, real, net, size=32, batch_size=5)
    assert same < 1e-6
    assert fvd(real, dark, net, size=32) > 1.0
    with pytest.raises(ValueError, match="fewer than num_frames"):
        fvd([v[:8] for v in real], real, net, size=32)
    x = fvd_preprocess(np.full((1, 2, 10, 12, 3), 255, np.uint8), size=16)
    assert x.shape == (1, 3, 2, 16, 16) and torch.allclose(x, torch.ones_like(x))
