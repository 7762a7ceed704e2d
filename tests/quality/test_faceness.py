"""The second detector's opinion: real faces are faces, background and clothing are not."""
import numpy as np
import pytest

from streamfiqa.align import Aligner
from streamfiqa.quality.faceness import FaceCheck


@pytest.fixture(scope="module")
def photo_faces(group_photo):
    from streamfiqa.detect import create_detector

    faces = create_detector("retinaface").detect(group_photo)
    assert len(faces) >= 3
    return group_photo, faces


def test_display_crops_of_real_faces_are_faces(photo_faces):
    image, faces = photo_faces
    check = FaceCheck()
    crops = Aligner().align(image, faces).display
    assert all(check([c]) for c in crops)
    assert check.counts == {"face": len(crops), "no_face": 0}


def test_crops_beside_and_below_faces_are_not(photo_faces):
    """The same-size square one face height below each face (chest, clothing) and the photo's corners."""
    image, faces = photo_faces
    check, h, w = FaceCheck(), *image.shape[:2]
    boxes = faces.boxes[:, :4].copy()
    size = (boxes[:, 3] - boxes[:, 1])[:, None]
    below = boxes + np.hstack([0 * size, 1.6 * size, 0 * size, 1.6 * size])
    crops = [image[int(y1):int(y2), int(x1):int(x2)] for x1, y1, x2, y2 in below if y2 <= h]
    side = int(min(h, w) // 6)
    crops += [image[:side, :side], image[:side, -side:], image[-side:, :side], image[-side:, -side:]]
    assert len(crops) >= 4
    assert not any(check([c]) for c in crops)


def test_an_unknown_detector_is_named_with_the_valid_ones():
    with pytest.raises(ValueError, match=r"quality.face_check: expected a detector name \(mtcnn, retinaface, scrfd, yunet\)"):
        FaceCheck("haar")
