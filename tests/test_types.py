import numpy as np
import pytest

from streamfiqa.types import Crops, Faces, Frame


def test_faces_validates_shapes():
    with pytest.raises(ValueError, match=r"landmarks: expected shape \(2, 5, 2\)"):
        Faces(np.zeros((2, 4)), np.zeros(2), np.zeros((2, 4, 2)))
    with pytest.raises(ValueError, match="scores"):
        Faces(np.zeros((2, 4)), np.zeros(3), np.zeros((2, 5, 2)))
    with pytest.raises(ValueError, match="x2 >= x1"):
        Faces(np.array([[10, 10, 5, 20]]), [1.0], np.zeros((1, 5, 2)))


def test_faces_indexing_and_scaling():
    f = Faces(np.array([[0, 0, 10, 20], [5, 5, 45, 35]]), [0.9, 0.8], np.ones((2, 5, 2)))
    assert len(f) == 2 and len(Faces.empty()) == 0
    assert f[np.array([False, True])].scores.tolist() == pytest.approx([0.8])
    assert f.sizes.tolist() == [10, 30]
    assert f.scaled(2.0).boxes[1].tolist() == [10, 10, 90, 70]


def test_frame_and_crops_validate():
    with pytest.raises(ValueError, match="uint8"):
        Frame("a", 0, 0.0, np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="112, 112, 3"):
        Crops(np.zeros((1, 64, 64, 3), np.uint8), [None])
