"""FID: the arithmetic against float64 references, and the Inception network's file layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from faceedit.errors import CheckpointError
from trainer.judges.fid import (
    FEATURE_DIM,
    FeatureStatistics,
    FIDInception,
    extract_features,
    fid_from_features,
    frechet_distance_from_moments,
    load_fid_inception,
    sqrtm_psd,
)

# pytorch-fid's pt_inception-2015-12-05-6726825d.pth: torchvision's Inception3 without the
# auxiliary head, 1008 logits, BasicConv2d = conv (no bias) + bn. Shapes are facts of that layout.
INCEPTION_SHAPES = {
    "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3),
    "Conv2d_1a_3x3.bn.weight": (32,),
    "Conv2d_1a_3x3.bn.running_var": (32,),
    "Conv2d_2a_3x3.conv.weight": (32, 32, 3, 3),
    "Conv2d_2b_3x3.conv.weight": (64, 32, 3, 3),
    "Conv2d_3b_1x1.conv.weight": (80, 64, 1, 1),
    "Conv2d_4a_3x3.conv.weight": (192, 80, 3, 3),
    "Mixed_5b.branch1x1.conv.weight": (64, 192, 1, 1),
    "Mixed_5b.branch5x5_1.conv.weight": (48, 192, 1, 1),
    "Mixed_5b.branch5x5_2.conv.weight": (64, 48, 5, 5),
    "Mixed_5b.branch3x3dbl_3.conv.weight": (96, 96, 3, 3),
    "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1),
    "Mixed_5c.branch_pool.conv.weight": (64, 256, 1, 1),
    "Mixed_5d.branch1x1.conv.weight": (64, 288, 1, 1),
    "Mixed_6a.branch3x3.conv.weight": (384, 288, 3, 3),
    "Mixed_6a.branch3x3dbl_3.conv.weight": (96, 96, 3, 3),
    "Mixed_6b.branch7x7_1.conv.weight": (128, 768, 1, 1),
    "Mixed_6b.branch7x7_2.conv.weight": (128, 128, 1, 7),
    "Mixed_6b.branch7x7_3.conv.weight": (192, 128, 7, 1),
    "Mixed_6c.branch7x7dbl_2.conv.weight": (160, 160, 7, 1),
    "Mixed_6e.branch7x7dbl_5.conv.weight": (192, 192, 1, 7),
    "Mixed_6e.branch_pool.conv.weight": (192, 768, 1, 1),
    "Mixed_7a.branch3x3_2.conv.weight": (320, 192, 3, 3),
    "Mixed_7a.branch7x7x3_4.conv.weight": (192, 192, 3, 3),
    "Mixed_7b.branch1x1.conv.weight": (320, 1280, 1, 1),
    "Mixed_7b.branch3x3_2a.conv.weight": (384, 384, 1, 3),
    "Mixed_7b.branch3x3_2b.conv.weight": (384, 384, 3, 1),
    "Mixed_7b.branch3x3dbl_1.conv.weight": (448, 1280, 1, 1),
    "Mixed_7b.branch3x3dbl_2.conv.weight": (384, 448, 3, 3),
    "Mixed_7c.branch3x3dbl_3b.conv.weight": (384, 384, 3, 1),
    "Mixed_7c.branch_pool.conv.weight": (192, 2048, 1, 1),
    "Mixed_7c.branch_pool.bn.running_mean": (192,),
    "fc.weight": (1008, 2048),
    "fc.bias": (1008,),
}
# 94 BasicConv2d (conv weight + bn weight, bias, mean, var, count = 6 keys) + fc (2 keys).
INCEPTION_KEY_COUNT = 94 * 6 + 2
INCEPTION_PARAMETERS = 23_850_960  # torchvision Inception3 without AuxLogits, 1008 classes


def reference_fid(a: np.ndarray, b: np.ndarray) -> float:
    """FID with the trace from the eigenvalues of the non-symmetric product S1 S2 (float64)."""
    m1, m2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    eigenvalues = np.linalg.eigvals(s1 @ s2)
    trace_root = np.sqrt(np.clip(eigenvalues.real, 0, None)).sum()
    return float(((m1 - m2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * trace_root)


def denman_beavers_sqrtm(matrix: np.ndarray, iterations: int = 60) -> np.ndarray:
    """Principal square root by the Denman-Beavers iteration: Y -> sqrt(A), Z -> 1/sqrt(A)."""
    y, z = matrix.copy(), np.eye(matrix.shape[0])
    for _ in range(iterations):
        y, z = (y + np.linalg.inv(z)) / 2, (z + np.linalg.inv(y)) / 2
    return y


@pytest.fixture(scope="module")
def inception() -> FIDInception:
    return FIDInception().eval()


def test_identical_feature_sets_give_zero() -> None:
    rng = np.random.default_rng(0)
    for count, dim in ((500, 32), (40, FEATURE_DIM)):  # full-rank and rank-deficient covariance
        features = rng.normal(size=(count, dim)) * rng.uniform(0.1, 3.0, size=dim)
        assert abs(fid_from_features(features, features)) < 1e-6


@pytest.mark.parametrize(("count", "dim"), [(400, 24), (60, 96), (30, 256)])
def test_fid_matches_a_float64_reference_on_gaussian_features(count: int, dim: int) -> None:
    rng = np.random.default_rng(count + dim)
    a = rng.normal(size=(count, dim))
    mixing = rng.normal(size=(dim, dim)) / np.sqrt(dim)
    b = rng.normal(size=(count, dim)) @ mixing * 1.5 + 0.3
    expected = reference_fid(a, b)
    assert fid_from_features(a, b) == pytest.approx(expected, rel=1e-6)
    assert fid_from_features(torch.from_numpy(a), torch.from_numpy(b)) == pytest.approx(
        expected, rel=1e-6
    )
    moments = frechet_distance_from_moments(
        a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
    )
    assert moments == pytest.approx(expected, rel=1e-6)


def test_fid_grows_with_the_shift_of_the_mean() -> None:
    rng = np.random.default_rng(3)
    a = rng.normal(size=(300, 8))
    b = rng.normal(size=(300, 8))
    gap = a.mean(0) - b.mean(0)
    shifted = fid_from_features(a, b + 2.0) - fid_from_features(a, b)
    # only the mean term changes: |gap - 2|^2 - |gap|^2
    assert shifted == pytest.approx(((gap - 2.0) ** 2).sum() - (gap**2).sum(), rel=1e-9)
    assert shifted > 0


def test_psd_square_root_agrees_with_denman_beavers() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 12))
    cov = np.cov(x, rowvar=False)
    root = sqrtm_psd(cov)
    np.testing.assert_allclose(root, denman_beavers_sqrtm(cov), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(root @ root, cov, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(root, root.T)


def test_trace_of_the_product_root_agrees_with_denman_beavers() -> None:
    rng = np.random.default_rng(2)
    s1 = np.cov(rng.normal(size=(300, 10)), rowvar=False)
    s2 = np.cov(rng.normal(size=(300, 10)) * 2 + 1, rowvar=False)
    a = FeatureStatistics.from_moments(np.zeros(10), s1)
    b = FeatureStatistics.from_moments(np.zeros(10), s2)
    trace_root = np.trace(denman_beavers_sqrtm(s1 @ s2))  # S1 S2 has a real PSD-like spectrum
    from trainer.judges.fid import frechet_distance

    expected = np.trace(s1) + np.trace(s2) - 2 * trace_root
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)
    np.testing.assert_allclose(a.covariance, s1, atol=1e-12)


def test_statistics_need_two_samples_of_equal_dimension() -> None:
    with pytest.raises(ValueError, match="N >= 2"):
        fid_from_features(np.zeros((1, 4)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="different dimensions"):
        fid_from_features(np.zeros((3, 4)), np.zeros((3, 5)))


def test_inception_state_dict_has_pytorch_fid_keys_and_shapes(inception: FIDInception) -> None:
    state = inception.state_dict()
    assert len(state) == INCEPTION_KEY_COUNT
    for key, shape in INCEPTION_SHAPES.items():
        assert tuple(state[key].shape) == shape, key
    assert not any(k.startswith("AuxLogits") for k in state)
    assert sum(p.numel() for p in inception.parameters()) == INCEPTION_PARAMETERS
    assert inception.Conv2d_1a_3x3.bn.eps == pytest.approx(1e-3)


@pytest.mark.slow
def test_inception_forward_gives_2048_features_at_any_input_size(inception: FIDInception) -> None:
    with torch.inference_mode():
        features = inception(torch.rand(1, 3, 40, 40) * 2 - 1)
    assert features.shape == (1, FEATURE_DIM)
    assert torch.isfinite(features).all() and (features >= 0).all()  # pooled ReLU outputs


def test_weights_file_in_pytorch_fid_layout_loads(tmp_path: Path, inception: FIDInception) -> None:
    # Saved without BatchNorm's step counters, as the 2018 port was.
    state = {
        k: torch.randn_like(v) if v.is_floating_point() else v
        for k, v in inception.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }
    path = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(state, path)
    loaded = load_fid_inception(path)
    assert not loaded.training
    assert not any(p.requires_grad for p in loaded.parameters())
    assert torch.equal(
        loaded.Mixed_7c.branch_pool.conv.weight, state["Mixed_7c.branch_pool.conv.weight"]
    )
    assert torch.equal(loaded.fc.bias, state["fc.bias"])


def test_weights_in_another_layout_are_refused_with_the_reason(
    tmp_path: Path, inception: FIDInception
) -> None:
    state = dict(inception.state_dict())
    state["fc.weight"] = torch.zeros(1000, 2048)
    state["fc.bias"] = torch.zeros(1000)
    path = tmp_path / "inception_v3_google.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="torchvision's ImageNet Inception"):
        load_fid_inception(path)
    with pytest.raises(CheckpointError, match="downloads nothing"):
        load_fid_inception(tmp_path / "absent.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="could not be read"):
        load_fid_inception(tmp_path / "junk.pth")


def test_extract_features_stacks_batches() -> None:
    stub = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(FEATURE_DIM))
    batches = [torch.rand(2, 3, 8, 8), torch.rand(3, 3, 8, 8)]
    features = extract_features(stub, batches)
    assert features.shape == (5, FEATURE_DIM) and features.dtype == np.float64
