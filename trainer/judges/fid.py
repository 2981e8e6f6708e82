"""Fréchet Inception Distance: the arithmetic, and the Inception network it is defined with.

FID compares two image sets through the 2048-d pool3 features of the Inception v3 that the
original TensorFlow implementation used. pytorch-fid ported those weights to
`pt_inception-2015-12-05-6726825d.pth`, laid out as torchvision's Inception3 with four blocks
changed (the "FID Inception"); `FIDInception` below is that network, written to load that file by
path. Nothing is downloaded: without the file, FID is simply not computed.

The distance between Gaussians N(m1, S1) and N(m2, S2) is
    |m1 - m2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)).
The last trace needs no general matrix square root (scipy's sqrtm, which faceedit does not
depend on): S1 S2 is similar to S1^(1/2) S2 S1^(1/2), so tr((S1 S2)^(1/2)) is the sum of the
singular values of S1^(1/2) S2^(1/2), or of any F1 F2^T with F_i^T F_i = S_i. The roots come
from symmetric eigendecompositions in float64, stable even for the rank-deficient covariances of
small image sets.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from faceedit.errors import CheckpointError
from faceedit.weights.state_match import compare_state
from faceedit.weights.torch_files import load_torch_file

FEATURE_DIM: Final[int] = 2048
INPUT_SIZE: Final[int] = 299
NUM_LOGITS: Final[int] = 1008  # the 2015 TensorFlow graph's classes (1000 + 8 unused)
WEIGHTS_FILE_NAME: Final[str] = "pt_inception-2015-12-05-6726825d.pth"
# torch.load of an old file may lack BatchNorm's step counter; it is not used in eval mode.
_OPTIONAL_KEY_SUFFIX: Final[str] = "num_batches_tracked"


# --- the arithmetic ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureStatistics:
    """Mean and covariance of a feature set, the covariance kept as a factor F with F^T F = S.

    For N <= D samples F is the centred data over sqrt(N - 1) (N x D): exact, and it makes the
    trace term an SVD of an N1 x N2 matrix instead of D x D eigendecompositions. For more
    samples F is the symmetric root of S (D x D), computed once, so one set (the real images of a
    class) can be compared with many others at the cost of one SVD each.
    """

    mean: np.ndarray  # (D,) float64
    factor: np.ndarray  # (R, D) float64, factor.T @ factor == covariance
    count: int

    @classmethod
    def from_features(cls, features: np.ndarray | Tensor) -> FeatureStatistics:
        feats = np.asarray(
            features.detach().cpu().numpy() if isinstance(features, Tensor) else features,
            dtype=np.float64,
        )
        if feats.ndim != 2 or feats.shape[0] < 2:
            raise ValueError(f"FID needs (N, D) features with N >= 2, got shape {feats.shape}")
        count, dim = feats.shape
        mean = feats.mean(axis=0)
        centred = (feats - mean) / np.sqrt(count - 1)
        factor = centred if count <= dim else sqrtm_psd(centred.T @ centred)
        return cls(mean, factor, count)

    @classmethod
    def from_moments(cls, mean: np.ndarray, covariance: np.ndarray) -> FeatureStatistics:
        mean = np.asarray(mean, dtype=np.float64)
        return cls(mean, sqrtm_psd(covariance), 0)

    @property
    def covariance(self) -> np.ndarray:
        return self.factor.T @ self.factor


def sqrtm_psd(matrix: np.ndarray) -> np.ndarray:
    """The symmetric PSD square root of a symmetric PSD matrix, via eigh in float64.

    Eigenvalues below the rank tolerance (dim * eps * largest) are rounding noise of a singular
    matrix; they are set to 0 rather than rooted, because sqrt would blow 1e-16 noise up to 1e-8.
    """
    sym = np.asarray(matrix, dtype=np.float64)
    if sym.ndim != 2 or sym.shape[0] != sym.shape[1]:
        raise ValueError(f"sqrtm_psd needs a square matrix, got shape {sym.shape}")
    sym = (sym + sym.T) / 2
    values, vectors = np.linalg.eigh(sym)
    tolerance = max(float(values.max(initial=0.0)), 0.0) * sym.shape[0] * np.finfo(np.float64).eps
    roots = np.sqrt(np.where(values > tolerance, values, 0.0))
    return (vectors * roots) @ vectors.T


def frechet_distance(a: FeatureStatistics, b: FeatureStatistics) -> float:
    """|m1 - m2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)), with S_i = F_i^T F_i.

    tr(S_i) = |F_i|_F^2, and the nonzero eigenvalues of S1 S2 are the squared singular values of
    F1 F2^T, so tr((S1 S2)^(1/2)) is the nuclear norm of F1 F2^T: no square root of a product of
    covariances is ever formed, which keeps the arithmetic stable for singular covariances.
    """
    if a.mean.shape != b.mean.shape or a.factor.shape[1] != b.factor.shape[1]:
        raise ValueError(
            f"FID statistics have different dimensions: {a.mean.shape[0]} and {b.mean.shape[0]}"
        )
    diff = a.mean - b.mean
    trace_root = float(np.linalg.svd(a.factor @ b.factor.T, compute_uv=False).sum())
    value = float(diff @ diff + np.sum(a.factor**2) + np.sum(b.factor**2) - 2.0 * trace_root)
    return max(value, 0.0)  # rounding can leave -1e-13 for identical sets


def frechet_distance_from_moments(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """FID between N(mu1, sigma1) and N(mu2, sigma2) given as means and covariances."""
    if np.shape(sigma1) != np.shape(mu1) * 2 or np.shape(sigma2) != np.shape(mu2) * 2:
        raise ValueError(
            f"covariances {np.shape(sigma1)}, {np.shape(sigma2)} do not fit means "
            f"{np.shape(mu1)}, {np.shape(mu2)}"
        )
    return frechet_distance(
        FeatureStatistics.from_moments(mu1, sigma1), FeatureStatistics.from_moments(mu2, sigma2)
    )


def fid_from_features(features_a: np.ndarray | Tensor, features_b: np.ndarray | Tensor) -> float:
    """FID between two (N, D) feature sets."""
    return frechet_distance(
        FeatureStatistics.from_features(features_a), FeatureStatistics.from_features(features_b)
    )


@torch.inference_mode()
def extract_features(
    network: nn.Module, batches: Iterable[Tensor], device: torch.device | str = "cpu"
) -> np.ndarray:
    """(N, D) float64 features of image batches (B, 3, H, W) in [-1, 1]."""
    out = [network(batch.to(device, torch.float32)).double().cpu().numpy() for batch in batches]
    if not out:
        return np.zeros((0, FEATURE_DIM), dtype=np.float64)
    return np.concatenate(out)


# --- the network ------------------------------------------------------------------------------


class BasicConv2d(nn.Module):
    """Conv (no bias) -> BatchNorm (eps 1e-3, TensorFlow's) -> ReLU; keys `conv`, `bn`."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int = 1,
        padding: int | tuple[int, int] = 0,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


def _avg_pool_3x3(x: Tensor) -> Tensor:
    # TensorFlow's average pooling leaves the zero padding out of the average.
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    """35x35 block: 1x1, 5x5, double 3x3 and pooled branches."""

    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, 1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, 1)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch5x5_2(self.branch5x5_1(x)),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                self.branch_pool(_avg_pool_3x3(x)),
            ],
            1,
        )


class InceptionB(nn.Module):
    """35 -> 17 reduction: strided 3x3, strided double 3x3 and max-pool branches."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat(
            [
                self.branch3x3(x),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                F.max_pool2d(x, kernel_size=3, stride=2),
            ],
            1,
        )


class InceptionC(nn.Module):
    """17x17 block with factorised 7x7 convolutions (1x7 then 7x1)."""

    def __init__(self, in_channels: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        single = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        double = self.branch7x7dbl_1(x)
        for layer in (
            self.branch7x7dbl_2,
            self.branch7x7dbl_3,
            self.branch7x7dbl_4,
            self.branch7x7dbl_5,
        ):
            double = layer(double)
        return torch.cat([self.branch1x1(x), single, double, self.branch_pool(_avg_pool_3x3(x))], 1)


class InceptionD(nn.Module):
    """17 -> 8 reduction: strided 3x3, 7x7-then-strided-3x3 and max-pool branches."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        long = self.branch7x7x3_1(x)
        for layer in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            long = layer(long)
        return torch.cat(
            [
                self.branch3x3_2(self.branch3x3_1(x)),
                long,
                F.max_pool2d(x, kernel_size=3, stride=2),
            ],
            1,
        )


class InceptionE(nn.Module):
    """8x8 block whose 3x3 branches split into parallel 1x3 and 3x1 convolutions.

    `pool` is "avg" for Mixed_7b and "max" for Mixed_7c: the 2015 graph max-pools in its last
    block, and FID is defined by that graph, so it is reproduced rather than corrected.
    """

    def __init__(self, in_channels: int, pool: Literal["avg", "max"]) -> None:
        super().__init__()
        self.pool = pool
        self.branch1x1 = BasicConv2d(in_channels, 320, 1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        short = self.branch3x3_1(x)
        double = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = (
            F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
            if self.pool == "max"
            else _avg_pool_3x3(x)
        )
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch3x3_2a(short),
                self.branch3x3_2b(short),
                self.branch3x3dbl_3a(double),
                self.branch3x3dbl_3b(double),
                self.branch_pool(pooled),
            ],
            1,
        )


class FIDInception(nn.Module):
    """Inception v3 as FID defines it; forward gives the (B, 2048) pool3 features.

    Attribute names equal torchvision's Inception3 (without the auxiliary head), so the state
    dict has pytorch-fid's keys: `Conv2d_1a_3x3.conv.weight`, `Mixed_5b.branch1x1.bn.running_mean`,
    ..., `fc.weight` (1008, 2048). `fc` is kept only so the file loads strictly; FID never uses it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, pool="avg")
        self.Mixed_7c = InceptionE(2048, pool="max")
        self.fc = nn.Linear(FEATURE_DIM, NUM_LOGITS)

    def forward(self, x: Tensor) -> Tensor:
        # 1. (B, 3, H, W) in [-1, 1] -> (B, 3, 299, 299), the range the graph was trained on.
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"FIDInception expects (B, 3, H, W) images, got {tuple(x.shape)}")
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        # 2. Stem: 299 -> 35.
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)  # (B, 192, 35, 35)
        # 3. Mixed blocks: 35 -> 17 -> 8.
        for block in (
            self.Mixed_5b,
            self.Mixed_5c,
            self.Mixed_5d,
            self.Mixed_6a,
            self.Mixed_6b,
            self.Mixed_6c,
            self.Mixed_6d,
            self.Mixed_6e,
            self.Mixed_7a,
            self.Mixed_7b,
            self.Mixed_7c,
        ):
            x = block(x)
        # 4. Global average pool: the 2048-d "pool3" features.
        return x.mean(dim=(2, 3))  # (B, 2048)


def load_fid_inception(
    path: str | os.PathLike[str], device: torch.device | str = "cpu"
) -> FIDInception:
    """FIDInception with pytorch-fid's weights from `path`, in eval mode, without gradients.

    The file is read by faceedit.weights.torch_files, which refuses pickled code.
    """
    file = Path(path)
    if not file.is_file():
        raise CheckpointError(
            f"FID Inception weights {file} do not exist; pass the path of pytorch-fid's "
            f"{WEIGHTS_FILE_NAME} (faceedit downloads nothing), or leave --fid-weights out to "
            "skip FID"
        )
    state = load_torch_file(file, f"pytorch-fid's {WEIGHTS_FILE_NAME}")
    network = FIDInception()
    load_inception_state(network, state, file)
    return network.to(device).eval().requires_grad_(False)


def load_inception_state(
    network: FIDInception, state: object, source: str | os.PathLike[str] = "<state dict>"
) -> None:
    """Copy a pytorch-fid-layout state dict into `network`, naming any key that does not fit."""
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError(
            f"{source} does not hold a state dict of tensors; expected pytorch-fid's "
            f"{WEIGHTS_FILE_NAME}"
        )
    mismatch = compare_state(
        network.state_dict(), state, optional=lambda k: k.endswith(_OPTIONAL_KEY_SUFFIX)
    )
    if mismatch:
        hint = (
            " (fc has 1000 classes: this is torchvision's ImageNet Inception, not the FID one)"
            if "fc.weight" in state and state["fc.weight"].shape[0] == 1000
            else ""
        )
        raise CheckpointError(
            f"{source} is not in pytorch-fid's Inception layout{hint}: {mismatch.summary()}; "
            f"use {WEIGHTS_FILE_NAME}"
        )
    network.load_state_dict(dict(state), strict=False)
