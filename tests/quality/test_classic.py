"""The embedded default scorers on real faces: the degradation bar, and shapes and errors."""
import numpy as np
import pytest

from conftest import SHARED
from streamfiqa.eval.degrade import KINDS, ranking_table
from streamfiqa.quality.scorers import create_scorer


@pytest.fixture(scope="module")
def real_faces():
    """Real aligned faces: the insightface wheel's photos, plus ../shared's deepface set when present."""
    from streamfiqa.eval.synth import default_face_paths
    from streamfiqa.photos import load_faces

    paths = default_face_paths()
    if not paths:
        pytest.skip("no real face photos: neither ../shared/data/faces/deepface nor insightface's images")
    return load_faces(paths, min_face=40).aligned


def test_crop_iqa_meets_the_degradation_bar(real_faces):
    table = ranking_table(create_scorer("crop_iqa").score, real_faces)
    assert set(table) == set(KINDS)
    assert all(v >= 0.9 for v in table.values()), table


def test_facenet_fusion_meets_the_degradation_bar(real_faces):
    # 12 faces (every kind 1.0 on 12 and on 24 alike; ``python -m bench`` measures the bar on the whole sets)
    faces = real_faces if (SHARED / "data").exists() else real_faces[:7]
    table = ranking_table(create_scorer("facenet_fusion", device="cpu").score, faces[:12])
    assert all(v >= 0.9 for v in table.values()), table


def test_scores_are_batch_invariant(real_faces):
    s = create_scorer("facenet_fusion", device="cpu")
    crops = real_faces[:5]
    np.testing.assert_allclose(s.score(crops), np.concatenate([s.score(crops[i:i + 1]) for i in range(5)]),
                               atol=1e-5)


def test_bad_crops_are_rejected_with_the_expected_shape():
    with pytest.raises(ValueError, match=r"expected aligned crops of shape \(N, 112, 112, 3\) uint8"):
        create_scorer("crop_iqa").score(np.zeros((2, 100, 100, 3), np.uint8))
    assert create_scorer("crop_iqa").score(np.zeros((0, 112, 112, 3), np.uint8)).shape == (0,)


def test_unknown_scorer_lists_the_valid_names():
    with pytest.raises(ValueError, match="valid names: crop_iqa, diffiqa, ediffiqa, facenet_fusion"):
        create_scorer("magic")
