"""DifFIQA: official UNet layout, trainer checkpoints, the DDIM grid, the score's formula, seeding."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from streamfiqa.models.diffiqa import DifFIQA, load_unet, unet_state
from streamfiqa.models.unet import Diffusion, Unet, cosine_alphas_cumprod


def test_official_unet_layout():
    sd = {k: tuple(v.shape) for k, v in Unet().state_dict().items()}
    # names and shapes of lucidrains' Unet(dim=128, dim_mults=(1, 2, 4, 8)) as used by DifFIQA
    for key, shape in {"init_conv.weight": (128, 3, 7, 7), "time_mlp.1.weight": (512, 128),
                       "time_mlp.3.weight": (512, 512), "downs.0.0.mlp.1.weight": (256, 512),
                       "downs.0.0.block1.proj.weight": (128, 128, 3, 3), "downs.0.0.block1.norm.weight": (128,),
                       "downs.0.2.fn.fn.to_qkv.weight": (384, 128, 1, 1), "downs.0.2.fn.fn.to_out.0.weight": (128, 128, 1, 1),
                       "downs.0.2.fn.fn.to_out.1.g": (1, 128, 1, 1), "downs.0.2.fn.norm.g": (1, 128, 1, 1),
                       "downs.0.3.weight": (128, 128, 4, 4), "downs.3.3.weight": (1024, 512, 3, 3),
                       "mid_block1.mlp.1.weight": (2048, 512), "mid_attn.fn.fn.to_qkv.weight": (384, 1024, 1, 1),
                       "mid_attn.fn.fn.to_out.weight": (1024, 128, 1, 1), "mid_attn.fn.norm.g": (1, 1024, 1, 1),
                       "ups.0.0.block1.proj.weight": (1024, 1536, 3, 3), "ups.0.0.res_conv.weight": (1024, 1536, 1, 1),
                       "ups.0.3.1.weight": (512, 1024, 3, 3), "ups.3.3.weight": (128, 128, 3, 3),
                       "final_res_block.block1.proj.weight": (128, 256, 3, 3), "final_conv.weight": (3, 128, 1, 1)}.items():
        assert sd[key] == shape, key
    assert len(sd) == 276 and "downs.0.0.res_conv.weight" not in sd


def test_trainer_checkpoint_ema_and_model_weights_load(tmp_path):
    torch.manual_seed(0)
    a, b = Unet(dim=16), Unet(dim=16)
    buffers = {"betas": torch.zeros(1000)}
    ckpt = {"step": 10, "model": {**{f"model.{k}": v for k, v in a.state_dict().items()}, **buffers},
            "ema": {"initted": torch.tensor(True), "step": torch.tensor(10),
                    **{f"ema_model.model.{k}": v for k, v in b.state_dict().items()},
                    **{f"online_model.model.{k}": v for k, v in a.state_dict().items()}},
            "opt": {"state": {}, "param_groups": []}, "scaler": None}
    torch.save(ckpt, tmp_path / "model.pt")
    ema = load_unet(tmp_path / "model.pt", "ema", dim=16)
    raw = load_unet(tmp_path / "model.pt", "model", dim=16)
    assert torch.equal(ema.init_conv.weight, b.init_conv.weight)
    assert torch.equal(raw.init_conv.weight, a.init_conv.weight)
    with pytest.raises(ValueError, match="'ema' or 'model'"):
        unet_state(ckpt, "best")


def test_cosine_schedule_and_official_ddim_grid():
    ac = cosine_alphas_cumprod()
    assert ac.shape == (1000,) and ac[0] > 0.9999 and ac[-1] < 1e-4
    seen = []

    class Spy(torch.nn.Module):
        def forward(self, x, t):
            seen.append(int(t[0]))
            return x

    d = Diffusion(Spy())
    d.reconstruct(torch.zeros(1, 3, 4, 4), 5, torch.zeros(7, 1, 3, 4, 4))
    assert seen == [4, 3, 2, 1, 0, 0]  # int(linspace(-1, 4, 7)) reversed, pairs up to (0, -1)


class LinearFR(torch.nn.Module):
    """A stand-in FR model with an easy independent computation."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(5)
        self.w = torch.nn.Parameter(torch.randn(8, 3 * 112 * 112) / 100)

    def forward(self, x):
        return x.flatten(1) @ self.w.t()


class FR:
    def __init__(self):
        self.net, self.device = LinearFR(), torch.device("cpu")


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(1)
    return DifFIQA(Unet(dim=8).eval(), FR(), t=3, repeats=2, seed=7, batch_size=4, device="cpu")


@pytest.fixture(scope="module")
def scored(tiny):
    """Two random crops and their scores as one batch (the score's slowest part: both tests below use it)."""
    crops = np.random.default_rng(0).integers(0, 256, (2, 112, 112, 3), dtype=np.uint8)
    return crops, tiny.score(crops)


@torch.no_grad()
def test_score_matches_an_independent_loop(tiny, scored):
    crops, got = scored
    d, fr, noise = tiny.diffusion, tiny.fr_net, tiny.noise
    ac = d.alphas_cumprod.double()
    for k in range(2):
        x = torch.from_numpy(crops[k, :, :, ::-1].copy()).permute(2, 0, 1).float() / 127.5 - 1
        emb = lambda v: F.normalize(fr(v[None]), dim=1)[0]  # noqa: E731
        base, terms = emb(x), {"noisy": [], "recon": [], "fnoisy": [], "frecon": []}
        for f, img in enumerate((x, x.flip(2))):
            for r in range(2):
                xt = ac[3].sqrt().float() * img + (1 - ac[3]).sqrt().float() * noise[0, f, r]
                rec = d.reconstruct(xt[None], 3, noise[1:, f, r][:, None])[0]
                terms["fnoisy" if f else "noisy"].append(float(emb(xt) @ base))
                terms["frecon" if f else "recon"].append(float(emb(rec) @ base))
        want = (sum(np.mean(v) for v in terms.values()) + float(emb(x.flip(2)) @ base)) / 5
        assert got[k] == pytest.approx(want, abs=1e-5)


def test_seeded_and_batch_invariant(tiny, scored):
    crops, batch = scored
    np.testing.assert_allclose([tiny.score(crops[i:i + 1])[0] for i in range(2)], batch, atol=1e-5)
    np.testing.assert_array_equal(tiny.score(crops), batch)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (not on CI)")
def test_same_seed_same_scores_on_cuda():
    """The noise bank is drawn on the CPU and moved, so a seed means the same perturbations on every device. Exact
    up to float32 rounding with cuDNN's TF32 convolutions off; with them on (PyTorch's default on Ampere and later)
    the scores move by a few 1e-4."""
    crops = np.random.default_rng(3).integers(0, 256, (3, 112, 112, 3), dtype=np.uint8)
    torch.manual_seed(1)
    unet = Unet(dim=8).eval()
    cpu = DifFIQA(unet, FR(), t=3, repeats=2, seed=7, batch_size=2, device="cpu").score(crops)
    gpu = DifFIQA(unet, FR(), t=3, repeats=2, seed=7, batch_size=2, device="cuda")
    np.testing.assert_allclose(gpu.score(crops), cpu, atol=1e-3)
    tf32 = torch.backends.cudnn.allow_tf32
    try:
        torch.backends.cudnn.allow_tf32 = False
        np.testing.assert_allclose(gpu.score(crops), cpu, atol=1e-5)
    finally:
        torch.backends.cudnn.allow_tf32 = tf32
