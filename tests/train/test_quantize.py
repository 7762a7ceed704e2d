"""INT8 students: the shipped fiqa_fast INT8 ranks held-out real faces as the float model does; quantising a
checkpoint writes a model that knows its source."""
import os
import shutil

import numpy as np
import pytest

from conftest import shared_path


@pytest.fixture(scope="module")
def held_out():
    """Aligned crops of 120 test-half photos (the half the students never trained on), half degraded."""
    from streamfiqa.eval.facedata import celeba_ids_dir, load_crops, read_identities

    shared_path("data/faces/celeba_ids/identities.csv")
    paths = read_identities(celeba_ids_dir()).split("test").paths[:120]
    return np.concatenate([load_crops(paths[:60]).aligned, load_crops(paths[60:], protocol="mixed", seed=5).aligned])


def test_shipped_int8_fast_student_ranks_and_embeds_like_the_float_one(held_out):
    from scipy.stats import spearmanr

    from streamfiqa.quality.scorers import create_scorer

    fp32 = create_scorer("fiqa_fast")
    int8 = create_scorer("fiqa_fast", precision="int8")
    q32, e32 = fp32.score_and_embed(held_out)
    q8, e8 = int8.score_and_embed(held_out)
    assert spearmanr(q32, q8)[0] > 0.98
    assert np.abs(q32 - q8).mean() < 0.05 * (q32.max() - q32.min())
    assert float(np.sum(e32 * e8, axis=1).min()) > 0.95  # the tracker's appearance embedding survives too
    from streamfiqa.models.fr import create_fr

    assert np.allclose(create_fr("student", precision="int8").embed(held_out), e8, atol=1e-5)  # as an FR model


def test_int8_refuses_a_model_made_from_other_weights(tmp_path):
    from streamfiqa.models.int8 import int8_path
    from streamfiqa.models.student import embedded_path
    from streamfiqa.quality.scorers import create_scorer

    heavy = tmp_path / "heavy.pt"
    shutil.copy(embedded_path("fiqa_heavy"), heavy)
    with pytest.raises(FileNotFoundError, match="streamfiqa quantize --weights"):
        create_scorer("student", weights=str(heavy), precision="int8")
    shutil.copy(int8_path(embedded_path("fiqa_fast")), int8_path(heavy))  # fast's INT8 beside heavy's weights
    with pytest.raises(ValueError, match="quantised from .*heavy.pt"):
        create_scorer("student", weights=str(heavy), precision="int8")
    with pytest.raises(ValueError, match="backend onnxruntime"):
        create_scorer("fiqa_fast", precision="int8", backend="torch")


def test_quantize_cli_writes_an_int8_model_beside_the_checkpoint(tmp_path, held_out):
    from scipy.stats import spearmanr

    from streamfiqa.cli import main
    from streamfiqa.models.student import embedded_path
    from streamfiqa.quality.scorers import create_scorer

    shared_path("data/faces/celeba_ids/identities.csv")
    weights = tmp_path / "fast.pt"
    shutil.copy(embedded_path("fiqa_fast"), weights)
    assert main(["quantize", "--weights", str(weights), "--photos", "60", "--log-level", "warning"]) == 0
    assert (tmp_path / "fast.int8.onnx").is_file()
    q8 = create_scorer("student", weights=str(weights), precision="int8").score(held_out)
    assert spearmanr(create_scorer("fiqa_fast").score(held_out), q8)[0] > 0.95  # fewer calibration faces
    assert main(["quantize", "--weights", str(tmp_path / "missing.pt")]) == 2
    # nothing is replaced unless asked, and the shipped model never is
    assert main(["quantize", "--weights", str(weights), "--photos", "60"]) == 2
    from streamfiqa.models.student import WEIGHTS_DIR

    shipped = (WEIGHTS_DIR / "fiqa_fast.int8.onnx").read_bytes()
    assert main(["quantize", "--student", "fiqa_fast", "--out", str(WEIGHTS_DIR / "fiqa_fast.int8.onnx"), "--force"]) == 2
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)
        (tmp_path / "fiqa_fast.int8.onnx").write_bytes(b"earlier")  # an embedded student's default: ./<name>.int8.onnx
        assert main(["quantize", "--student", "fiqa_fast"]) == 2
    finally:
        os.chdir(cwd)
    assert (tmp_path / "fiqa_fast.int8.onnx").read_bytes() == b"earlier"
    assert (WEIGHTS_DIR / "fiqa_fast.int8.onnx").read_bytes() == shipped
