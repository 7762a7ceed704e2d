import cv2
import numpy as np
import pytest

from streamfiqa.align import ARCFACE_TEMPLATE, Aligner
from streamfiqa.quality.tier0 import COMPONENTS, QualityAssessor, head_pose


@pytest.fixture(scope="module")
def faces_and_crops(group_photo, mtcnn):
    faces = mtcnn.detect(group_photo)
    return faces, Aligner().align(group_photo, faces).aligned


def test_template_is_frontal():
    yaw, pitch, roll = head_pose(ARCFACE_TEMPLATE[None])[0]
    assert abs(yaw) < 2 and abs(pitch) < 2 and abs(roll) < 1


def test_pose_signs():
    lm = ARCFACE_TEMPLATE.copy()
    turned = lm.copy()
    turned[2, 0] += 10  # nose towards image right
    assert head_pose(turned[None])[0, 0] > 20
    mirrored = lm.copy()
    mirrored[2, 0] -= 10
    assert head_pose(mirrored[None])[0, 0] < -20
    c, s = np.cos(0.3), np.sin(0.3)
    rolled = (lm - 56) @ np.array([[c, s], [-s, c]]) + 56
    assert head_pose(rolled[None])[0, 2] == pytest.approx(np.degrees(0.3), abs=0.5)


@pytest.mark.parametrize("degrade", ["blur", "downscale", "dark"])
def test_degraded_crops_score_lower_on_real_faces(faces_and_crops, degrade):
    faces, crops = faces_and_crops
    if degrade == "blur":
        bad = np.stack([cv2.GaussianBlur(c, (0, 0), 2.0) for c in crops])
    elif degrade == "downscale":
        bad = np.stack([cv2.resize(cv2.resize(c, (28, 28), interpolation=cv2.INTER_AREA), (112, 112)) for c in crops])
    else:
        bad = (crops * 0.25).astype(np.uint8)
    qa = QualityAssessor()
    assert np.all(qa.assess(faces, crops).score > qa.assess(faces, bad).score)


def test_gates_report_which_failed(faces_and_crops):
    faces, crops = faces_and_crops
    q = QualityAssessor(min_inter_eye=1000, max_yaw=90).assess(faces, crops)
    assert not q.passed.any()
    assert all(r == ["min_inter_eye"] for r in q.reasons)
    assert q.components.shape == (len(faces), len(COMPONENTS))
    assert set(q.row(0)) == set(COMPONENTS)


def test_a_face_cut_by_the_frame_edge_is_measured_on_what_the_frame_holds(group_photo, mtcnn):
    """Each face of a real photo, with the photo ending a fifth of the way into it: the crop's black padding is not
    counted as the sharpest edge of the face, nor as clipped pixels; the face is ``in_frame`` in part and fails
    ``min_in_frame``, where every whole face passes."""
    faces = mtcnn.detect(group_photo)
    aligner, qa = Aligner(), QualityAssessor()
    whole = aligner.align(group_photo, faces)
    assert whole.valid.all() and qa.assess(faces, whole.aligned, whole.valid).passed.all()
    for k in range(len(faces)):
        x1, _, x2, _ = faces.boxes[k][:4]
        frame = np.ascontiguousarray(group_photo[:, : int(x2 - 0.2 * (x2 - x1))])
        one = faces[np.array([k])]
        cut = aligner.align(frame, one)
        q = qa.assess(one, cut.aligned, cut.valid).row(0)
        blind = QualityAssessor().assess(one, cut.aligned).row(0)  # the padding counted as face
        sharp = qa.assess(one, whole.aligned[k:k + 1]).row(0)["sharpness"]  # the whole face's
        assert 0.5 < q["in_frame"] < 0.99 and blind["in_frame"] == 1.0
        assert q["clipped"] < blind["clipped"]
        assert abs(q["sharpness"] / sharp - 1) < 0.2 and blind["sharpness"] > 1.5 * sharp
        assert qa.assess(one, cut.aligned, cut.valid).reasons == [["min_in_frame"]]
