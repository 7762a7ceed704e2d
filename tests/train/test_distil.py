"""Distillation of a quality student on real faces."""
import logging

import numpy as np

from conftest import shared_path


def test_distil_tiny_run_lowers_its_loss_and_writes_loadable_outputs(tmp_path, caplog):
    from streamfiqa.train.distil import DistilConfig, distil
    from streamfiqa.eval.facedata import celeba_ids_dir
    from streamfiqa.quality.scorers import create_scorer

    pt = shared_path("models/mobilefacenet/mobilefacenet_ms1m_arcface.pt")
    cfg = DistilConfig(arch="mfn80", teacher_fr="mobilefacenet", teacher_fr_args={"weights": str(pt), "device": "cpu"},
                       label_frs=[("facenet", {})],  # a second teacher's utility averaged into the labels
                       label_norms=[("buffalo_s", {})],  # and a feature norm
                       init=str(pt), epochs=3, variants=1, max_photos=48, batch_size=16, lr=1e-3, val_fraction=0.2)
    out = distil([str(celeba_ids_dir())], tmp_path / "st", cfg, progress=False)
    assert out["teacher"] == "utility:mobilefacenet+facenet+norm:buffalo_s"
    losses = [h["train_loss"] for h in out["history"]]
    assert losses[-1] < losses[0]
    scorer = create_scorer("student", weights=out["out"])
    assert scorer.score(np.zeros((2, 112, 112, 3), np.uint8)).shape == (2,)
    assert (tmp_path / "st" / "student.onnx").stat().st_size > 100_000
    # resumable: a second call with resume picks up after the last epoch and changes nothing
    # (and reads the labelled training set back instead of detecting and labelling again)
    assert (tmp_path / "st" / "training_set.npz").is_file()
    with caplog.at_level(logging.INFO, logger="streamfiqa.train.distil"):
        again = distil([str(celeba_ids_dir())], tmp_path / "st", cfg, resume=True, progress=False)
    assert len(again["history"]) == 3 and "resumed: the labelled training set" in caplog.text
    # other labelling options build the set again
    from streamfiqa.train.distil import _set_key, load_training_set

    other = DistilConfig(**{**vars(cfg), "margin": 0.2})
    saved = tmp_path / "st" / "training_set.npz"
    assert load_training_set(saved, _set_key([str(celeba_ids_dir())], other, None)) is None


def test_several_teachers_average_standardised_utilities_on_the_first_one_s_scale():
    from streamfiqa.train.distil import several_teachers

    a = np.array([0.2, 0.4, 0.6, np.nan])         # the teacher: mean 0.4
    b = np.array([10.0, 30.0, 20.0, 40.0])        # another scale, another order
    out = several_teachers([a, b])
    za = (a - 0.4) / a[:3].std()
    zb = (b - b.mean()) / b.std()
    np.testing.assert_allclose(out[:3], ((za[:3] + zb[:3]) / 2) * a[:3].std() + 0.4, rtol=1e-5)
    np.testing.assert_allclose(out[3], zb[3] * a[:3].std() + 0.4, rtol=1e-5)  # only b labelled it
    np.testing.assert_allclose(several_teachers([a]), a, rtol=1e-5)


def test_an_unknown_label_recogniser_is_refused_before_any_work():
    import pytest
    from streamfiqa.train.distil import DistilConfig

    with pytest.raises(Exception, match="buffalo_s"):  # the error lists the valid names
        DistilConfig(label_frs=[("nosuchnet", {})])
    with pytest.raises(ValueError, match="--labels utility"):
        DistilConfig(labels="consistency", label_frs=[("facenet", {})])
    with pytest.raises(ValueError, match="--label-norm .*--labels utility"):
        DistilConfig(labels="consistency", label_norms=[("buffalo_s", {})])


def test_a_feature_norm_falls_with_the_face_s_quality_and_a_normalised_one_is_refused(group_photo):
    """The premise of ``--label-norm``, on the real faces of the insightface wheel's group photo: a margin-trained
    recogniser's (``buffalo_s``') feature norm falls when a face is blurred; foamliu's MobileFaceNet normalises
    inside its network, so its norm says nothing and is refused."""
    import cv2
    import pytest
    from streamfiqa.align import Aligner
    from streamfiqa.detect import create_detector
    from streamfiqa.models.fr import create_fr
    from streamfiqa.train.distil import norm_labels

    crops = Aligner().align(group_photo, create_detector("retinaface").detect(group_photo)).aligned
    blurred = np.stack([cv2.GaussianBlur(c, (0, 0), 2.5) for c in crops])
    fr = create_fr("buffalo_s")
    sharp, soft = norm_labels(fr, crops), norm_labels(fr, blurred)
    assert len(crops) >= 5 and (soft < sharp).mean() >= 0.8, (sharp, soft)
    with pytest.raises(ValueError, match="says nothing"):
        pt = shared_path("models/mobilefacenet/mobilefacenet_ms1m_arcface.pt")
        norm_labels(create_fr("mobilefacenet", weights=str(pt), device="cpu"), crops)
