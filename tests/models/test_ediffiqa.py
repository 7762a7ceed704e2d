"""eDifFIQA: official key layouts, strict loading, the head's formula, batch invariance, ONNX export."""
import numpy as np
import pytest
import torch

from streamfiqa.models.common import to_input
from streamfiqa.models.ediffiqa import EDifFIQA, EDifFIQAScorer, detect_variant, load_ediffiqa

BLOCKS = {"S": (2, 2, 2, 2), "M": (3, 4, 14, 3), "L": (3, 13, 30, 3)}


def official_iresnet_keys(blocks) -> dict:
    """Key → shape of the reference ``model/iresnet.py`` (written from its module tree)."""
    keys = {"conv1.weight": (64, 3, 3, 3), "prelu.weight": (64,), "fc.weight": (512, 512 * 49), "fc.bias": (512,)}
    bn = lambda p, c: {f"{p}.{n}": (c,) for n in ("weight", "bias", "running_mean", "running_var")}  # noqa: E731
    keys.update(bn("bn1", 64)), keys.update(bn("bn2", 512)), keys.update(bn("features", 512))
    cin = 64
    for i, (c, n) in enumerate(zip((64, 128, 256, 512), blocks), 1):
        for j in range(n):
            p = f"layer{i}.{j}"
            keys.update(bn(f"{p}.bn1", cin if j == 0 else c)), keys.update(bn(f"{p}.bn2", c)), keys.update(bn(f"{p}.bn3", c))
            keys[f"{p}.conv1.weight"] = (c, cin if j == 0 else c, 3, 3)
            keys[f"{p}.conv2.weight"] = (c, c, 3, 3)
            keys[f"{p}.prelu.weight"] = (c,)
            if j == 0:
                keys[f"{p}.downsample.0.weight"] = (c, cin, 1, 1)
                keys.update(bn(f"{p}.downsample.1", c))
        cin = c
    return keys


def layout(model) -> dict:
    return {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}


@pytest.mark.parametrize("variant", ["S", "M", "L"])
def test_iresnet_variants_have_the_official_layout(variant):
    want = {f"base_model.{k}": v for k, v in official_iresnet_keys(BLOCKS[variant]).items()}
    want.update({"mlp.l1.weight": (1024, 512), "mlp.l1.bias": (1024,), "mlp.l2.weight": (1, 1024), "mlp.l2.bias": (1,)})
    assert layout(EDifFIQA(variant)) == want


def test_mobilefacenet_variant_has_the_official_key_names():
    got = layout(EDifFIQA("T"))
    for key, shape in {"base_model.conv1.conv.weight": (64, 3, 3, 3), "base_model.conv2_dw.conv.weight": (64, 1, 3, 3),
                       "base_model.conv_23.conv.conv.weight": (128, 64, 1, 1),
                       "base_model.conv_23.conv_dw.conv.weight": (128, 1, 3, 3),
                       "base_model.conv_23.project.conv.weight": (64, 128, 1, 1),
                       "base_model.conv_3.model.3.project.bn.running_var": (64,),
                       "base_model.conv_4.model.5.conv.prelu.weight": (256,),
                       "base_model.conv_45.conv.conv.weight": (512, 128, 1, 1),
                       "base_model.conv_5.model.1.conv_dw.conv.weight": (256, 1, 3, 3),
                       "base_model.conv_6_sep.conv.weight": (512, 128, 1, 1),
                       "base_model.conv_6_dw.conv.weight": (512, 1, 7, 7), "base_model.conv_6_dw.bn.weight": (512,),
                       "base_model.linear.weight": (512, 512), "base_model.bn.running_mean": (512,)}.items():
        assert got[key] == shape, key
    assert not any(k.startswith("base_model.conv_6_dw.prelu") for k in got)  # Linear_block has no PReLU
    assert not any("conv_3.model.4" in k for k in got)


@pytest.mark.parametrize("variant", ["S", "T"])
def test_official_checkpoint_loads_strictly_and_variant_is_detected(tmp_path, variant):
    torch.manual_seed(1)
    ref = EDifFIQA(variant).eval()
    path = tmp_path / f"ediffiqa{variant}.pth"
    torch.save(ref.state_dict(), path)
    assert detect_variant(ref.state_dict()) == variant
    model = load_ediffiqa(path)
    x = torch.rand(3, 3, 112, 112) * 2 - 1
    with torch.no_grad():
        assert torch.equal(model(x), ref(x))


def test_wrong_checkpoint_names_what_differs(tmp_path):
    state = EDifFIQA("S").state_dict()
    state["mlp.extra"] = torch.zeros(1)
    del state["mlp.l2.bias"]
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match=r"missing 1 \['mlp.l2.bias'\].*unexpected 1 \['mlp.extra'\]"):
        load_ediffiqa(tmp_path / "bad.pth")


def test_head_formula_and_preprocessing_match_an_independent_computation():
    torch.manual_seed(2)
    model = EDifFIQA("S").eval()
    feat = torch.randn(4, 512)
    w1, b1 = model.mlp.l1.weight.detach().numpy(), model.mlp.l1.bias.detach().numpy()
    w2, b2 = model.mlp.l2.weight.detach().numpy(), model.mlp.l2.bias.detach().numpy()
    from scipy.special import erf

    h = feat.numpy() @ w1.T + b1
    h = 0.5 * h * (1 + erf(h / np.sqrt(2)))  # exact GELU
    want = (h @ w2.T + b2)[:, 0]
    with torch.no_grad():
        got = model.mlp(feat).squeeze(1).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)
    bgr = np.random.default_rng(0).integers(0, 256, (2, 112, 112, 3), dtype=np.uint8)
    x = to_input(bgr).numpy()
    np.testing.assert_allclose(x, ((bgr[..., ::-1] / 255.0 - 0.5) / 0.5).transpose(0, 3, 1, 2), atol=1e-6)


def test_scores_are_batch_invariant_and_deterministic(tmp_path, group_photo, mtcnn):
    from streamfiqa.align import Aligner

    torch.manual_seed(3)
    torch.save(EDifFIQA("S").state_dict(), tmp_path / "s.pth")
    scorer = EDifFIQAScorer(str(tmp_path / "s.pth"), device="cpu", batch_size=16)
    faces = Aligner().align(group_photo, mtcnn.detect(group_photo)).aligned
    crops = np.concatenate([faces] * 6)[:16]
    batch = scorer.score(crops)
    alone = np.array([scorer.score(crops[i:i + 1])[0] for i in range(0, 16, 5)])
    np.testing.assert_allclose(batch[::5], alone, atol=1e-5)
    np.testing.assert_array_equal(scorer.score(crops), batch)
    assert scorer.name == "ediffiqa_s"


def test_runs_on_onnx_runtime_with_the_backends_default_precision(tmp_path, group_photo, mtcnn):
    from streamfiqa.align import Aligner

    torch.manual_seed(3)
    torch.save(EDifFIQA("S").state_dict(), tmp_path / "s.pth")
    crops = Aligner().align(group_photo, mtcnn.detect(group_photo)).aligned
    on_torch = EDifFIQAScorer(str(tmp_path / "s.pth"), device="cpu").score(crops)
    on_ort = EDifFIQAScorer(str(tmp_path / "s.pth"), backend="onnxruntime").score(crops)
    np.testing.assert_allclose(on_ort, on_torch, atol=1e-4)


@pytest.mark.parametrize("variant", ["S", "T"])
def test_onnx_export_has_dynamic_batch_and_matches_torch(tmp_path, variant):
    from engines.export import export_onnx, parity

    torch.manual_seed(4)
    model = EDifFIQA(variant).eval()
    with torch.no_grad():  # give BN statistics and outputs a realistic spread
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1), m.running_var.uniform_(0.5, 2.0)
    path = export_onnx(model, tmp_path / "m.onnx")
    assert parity(model, path, batches=(1, 5, 32)) <= 1e-4
