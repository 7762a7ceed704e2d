"""MobileFaceNet FR loading, the distilled students, FaceQAN and distillation on real faces."""
import numpy as np
import pytest
import torch

from conftest import shared_path


@pytest.fixture(scope="module")
def faces():
    from streamfiqa.eval.facedata import celeba_ids_dir, load_crops, read_identities

    shared_path("data/faces/celeba_ids/identities.csv")
    ids = read_identities(celeba_ids_dir()).split("test")
    keep = np.isin(ids.ids, np.unique(ids.ids)[:4])
    sub = ids.subset(keep)
    return sub, load_crops(sub.paths).aligned


def test_mobilefacenet_loads_strictly_and_matches_its_onnx(faces):
    from streamfiqa.models.fr import create_fr

    pt = shared_path("models/mobilefacenet/mobilefacenet_ms1m_arcface.pt")
    sub, crops = faces
    torch_fr = create_fr("mobilefacenet", weights=str(pt), device="cpu")
    onnx_fr = create_fr("mobilefacenet_onnx", model_path=str(pt.with_suffix(".onnx")))
    a, b = torch_fr.embed(crops), onnx_fr.embed(crops)
    assert a.shape == (len(crops), 128)
    assert np.abs(a - b).max() < 1e-4
    sim = a @ a.T
    same = sub.ids[:, None] == sub.ids[None, :]
    off = ~np.eye(len(crops), dtype=bool)
    assert sim[same & off].mean() > sim[~same].mean() + 0.3  # it recognises people
    assert torch_fr.convention.channels == "RGB" and torch_fr.convention.std[0] == pytest.approx(0.229)


def test_mobilefacenet_rejects_a_foreign_state_dict(tmp_path):
    from streamfiqa.models.fr import load_mobilefacenet
    from streamfiqa.models.mobilefacenet import MobileFaceNet

    torch.save(MobileFaceNet().state_dict(), tmp_path / "other.pt")
    with pytest.raises(ValueError, match="missing"):
        load_mobilefacenet(tmp_path / "other.pt")


def test_embedded_students_rank_degraded_photos_below_clean(faces):
    from streamfiqa.eval.facedata import load_crops
    from streamfiqa.quality.scorers import create_scorer

    sub, crops = faces
    for name in ("fiqa_fast", "fiqa_heavy"):
        scorer = create_scorer(name)
        clean = scorer.score(crops)
        for kind in ("noise", "jpeg", "blur"):
            worse = scorer.score(load_crops(sub.paths, protocol=kind).aligned)
            assert np.mean(clean > worse) >= 0.8, (name, kind)


def test_student_embedding_serves_as_fr(faces):
    from streamfiqa.quality.scorers import create_scorer

    sub, crops = faces
    q, e = create_scorer("fiqa_fast").score_and_embed(crops)
    assert q.shape == (len(crops),) and e.shape == (len(crops), 128)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1, atol=1e-4)
    sim = e @ e.T
    same = sub.ids[:, None] == sub.ids[None, :]
    off = ~np.eye(len(crops), dtype=bool)
    assert sim[same & off].mean() > sim[~same].mean() + 0.2


def test_faceqan_scores_degraded_faces_lower_and_is_batch_invariant(faces):
    from streamfiqa.eval.degrade import blur, noise
    from streamfiqa.models.faceqan import FaceQAN
    from streamfiqa.models.fr import load_mobilefacenet

    _, crops = faces
    net = load_mobilefacenet(shared_path("models/mobilefacenet/mobilefacenet_ms1m_arcface.pt"))
    qan = FaceQAN(net, steps=2, copies=3, device="cpu", batch_size=3)
    x = crops[:16]
    clean = qan.score(x)
    assert clean.shape == (16,) and np.all((clean >= 0) & (clean <= 1))
    bad = qan.score(np.stack([noise(blur(c, 3.0), 25) for c in x]))
    assert np.mean(clean > bad) >= 0.75 and bad.mean() < clean.mean()
    one = np.concatenate([qan.score(x[i:i + 1]) for i in range(2)])
    assert np.abs(one - clean[:2]).max() < 1e-4 + 2e-3 * clean[:2].max()  # float summation order only


def test_grafiqs_runs_on_mobilefacenet_with_real_bn_statistics(faces):
    from streamfiqa.quality.scorers import create_scorer

    _, crops = faces
    pt = shared_path("models/mobilefacenet/mobilefacenet_ms1m_arcface.pt")
    g = create_scorer("grafiqs", fr="mobilefacenet", fr_args={"weights": str(pt)}, device="cpu")
    assert len(g.bns) > 40
    s = g.score(crops[:3])
    assert s.shape == (3,) and np.all(s < 0)
    bgr = create_scorer("grafiqs", fr="mobilefacenet", fr_args={"weights": str(pt)}, device="cpu", color="bgr")
    assert not np.allclose(bgr.score(crops[:3]), s)


def test_unknown_scorer_argument_is_named():
    from streamfiqa.quality.scorers import create_scorer

    with pytest.raises(ValueError, match="unknown argument.*bogus.*valid"):
        create_scorer("fiqa_fast", bogus=1)
