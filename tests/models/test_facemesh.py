"""The face mesh and iris networks (MediaPipe's, converted to torch) on real frames: the mesh lands on the face, and
the eye measure tells shut eyes from open ones on a real clip's blinks (frames chosen by looking)."""
import av
import numpy as np
import pytest
import torch

from conftest import shared_path
from streamfiqa.models.facemesh import IRIS_WEIGHTS, MEASURES, WEIGHTS, FaceMesh

# andrew_clip_1 (development half): eyes fully shut, and wide open, found by looking at every frame of 0-319
SHUT = [21, 24, 25, 26, 27, 29, 30, 31, 49, 50, 51, 84, 85]
OPEN = [0, 10, 40, 70, 100, 150, 180, 230, 260, 290]


def test_the_converted_graphs_say_what_they_are():
    for path, source in ((WEIGHTS, "face_landmark.tflite"), (IRIS_WEIGHTS, "iris_landmark.tflite")):
        g = torch.load(path, map_location="cpu", weights_only=True)
        assert g["format"] == "streamfiqa-tflite-graph/1" and g["source"] == source
        assert g["licence"] == "Apache-2.0" and "mediapipe 0.10.14" in g["origin"] and len(g["sha256"]) == 64


@pytest.fixture(scope="module")
def andrew():
    """andrew_clip_1's frames of :data:`SHUT` and :data:`OPEN`, cut for the mesh around RetinaFace's face."""
    from streamfiqa.detect import create_detector

    path = shared_path("data/videos/talking/FuxiVirtualHuman__styletalk__andrew_clip_1.mp4")
    det, want, crops = create_detector("retinaface"), set(SHUT + OPEN), {}
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i in want:
                img = f.to_ndarray(format="bgr24")
                faces = det.detect(img)
                k = int(np.argmax(faces.scores))
                crops[i] = FaceMesh.crop(img, faces.boxes[k], faces.landmarks[k])
            if i >= max(want):
                break
    return crops


def test_the_mesh_lands_on_the_face(andrew):
    mesh = FaceMesh()
    pts, presence = mesh.landmarks(np.stack([andrew[i] for i in OPEN]))
    assert pts.shape == (len(OPEN), 468, 3) and np.all(presence > 0.9)
    # the face fills the middle two thirds of the crop: every point within it, the nose tip (1) near the centre
    assert np.all((pts[..., :2] > 10) & (pts[..., :2] < 182))
    assert np.all(np.abs(pts[:, 1, :2] - 96) < 30)


def test_shut_eyes_measure_below_every_open_eye(andrew):
    mesh = FaceMesh()
    m = mesh.measure(np.stack([andrew[i] for i in SHUT + OPEN]))
    assert m.shape == (len(SHUT) + len(OPEN), len(MEASURES))
    shut, open_ = m[: len(SHUT), 0], m[len(SHUT):, 0]
    assert shut.max() < 0.2 < open_.min(), (shut.round(3), open_.round(3))
    assert np.all(m[:, 2] > 0.9)  # a face in every crop


def test_no_crops_no_measures():
    assert FaceMesh().measure(np.zeros((0, 192, 192, 3), np.uint8)).shape == (0, len(MEASURES))
    with pytest.raises(ValueError, match="192"):
        FaceMesh().landmarks(np.zeros((1, 112, 112, 3), np.uint8))
