"""GraFIQs: the per-image BN loss, batched gradients, gradient points, direction on real faces."""
import copy

import numpy as np
import pytest
import torch

from streamfiqa.models.grafiqs import GraFIQs
from streamfiqa.models.iresnet import iresnet


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    model = iresnet(18).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2.0)
    return model


def crops(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 112, 112, 3), dtype=np.uint8)


def reference_batch1(net, x, point):
    """The official loop for one image: batch statistics over [0, 2, 3] of a batch of one."""
    means, vars_, stats = [], [], []

    def hook(m, inp, out):
        means.append(inp[0].mean([0, 2, 3]))
        vars_.append(inp[0].var([0, 2, 3], unbiased=False))
        stats.append((m.running_mean, m.running_var))

    hooks = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    x = x.clone().requires_grad_(True)
    taps = {}
    net(x, taps)
    for h in hooks:
        h.remove()
    mse = torch.nn.MSELoss()
    loss = sum(mse(m, rm) + mse(v, rv) for m, v, (rm, rv) in zip(means, vars_, stats)) / len(means)
    target = x if point == "image" else taps[point]
    (g,) = torch.autograd.grad(loss, target)
    return float(g.abs().sum())


@pytest.mark.parametrize("point", ["image", "block2", "block4"])
def test_batched_gradients_equal_the_official_batch_of_one(net, point):
    from streamfiqa.models.common import to_input

    g = GraFIQs(net, point, device="cpu", batch_size=8)
    batch = crops(5)
    got = g.raw(batch)
    want = [reference_batch1(net, to_input(batch[i:i + 1]), point) for i in range(5)]
    np.testing.assert_allclose(got, want, rtol=1e-4)
    assert np.allclose(g.score(batch), -got)


def test_score_is_the_same_alone_or_in_a_batch(net):
    g = GraFIQs(net, "block1", device="cpu", batch_size=12)
    batch = crops(12, seed=1)
    full = g.raw(batch)
    np.testing.assert_allclose(full[[0, 7, 11]], [g.raw(batch[i:i + 1])[0] for i in (0, 7, 11)], rtol=1e-4)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (not on CI)")
def test_cuda_gradients_equal_the_cpu_ones(net):
    batch = crops(12, seed=2)
    cpu = GraFIQs(net, "block2", device="cpu", batch_size=8).raw(batch)
    gpu = GraFIQs(copy.deepcopy(net), "block2", device="cuda", batch_size=8).raw(batch)  # it moves the network
    np.testing.assert_allclose(gpu, cpu, rtol=1e-3)


def test_rejects_networks_without_batchnorm_statistics_and_unknown_points(net):
    with pytest.raises(ValueError, match="BatchNorm2d"):
        GraFIQs(torch.nn.Conv2d(3, 3, 1), device="cpu")
    with pytest.raises(ValueError, match="image, block1"):
        GraFIQs(net, "block9", device="cpu")


def test_direction_on_real_faces_degradation_raises_the_gradient(group_photo, mtcnn):
    """Measured direction on the embedded FaceNet (its bottleneck BN has real statistics):
    larger gradients for degraded faces, so the exposed score (−Σ|grad|) ranks clean higher."""
    from streamfiqa.align import Aligner
    from streamfiqa.eval.degrade import exposure
    from streamfiqa.quality.scorers import create_scorer

    faces = Aligner().align(group_photo, mtcnn.detect(group_photo)).aligned
    g = create_scorer("grafiqs", device="cpu", point="image")
    worse = g.score(np.stack([exposure(f) for f in faces]))
    assert np.mean(g.score(faces) > worse) >= 0.8
