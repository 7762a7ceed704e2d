import numpy as np

from streamfiqa.align import ARCFACE_TEMPLATE, Aligner, similarity_transform


def test_similarity_transform_recovers_a_known_one():
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -5.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = ARCFACE_TEMPLATE.astype(np.float64)
    dst = src @ rot.T + shift
    m = similarity_transform(src, dst)
    np.testing.assert_allclose(m[:, :2], rot, atol=1e-9)
    np.testing.assert_allclose(m[:, 2], shift, atol=1e-9)


def test_alignment_matches_insightface_norm_crop(group_photo, mtcnn):
    from insightface.utils import face_align

    faces = mtcnn.detect(group_photo)
    crops = Aligner().align(group_photo, faces)
    for k in range(len(faces)):
        ref = face_align.norm_crop(group_photo, faces.landmarks[k])
        assert np.abs(crops.aligned[k].astype(int) - ref).max() <= 1


def test_display_crop_is_square_with_margin_and_padded_at_edges():
    img = np.full((100, 100, 3), 200, np.uint8)
    crop = Aligner(display_margin=0.5).display_crop(img, np.array([0, 0, 40, 20]))
    assert crop.shape == (80, 80, 3)
    assert crop[0, 0].tolist() == [0, 0, 0] and crop[40, 40].tolist() == [200, 200, 200]
    assert Aligner(display_size=64).display_crop(img, np.array([10, 10, 50, 50])).shape == (64, 64, 3)
