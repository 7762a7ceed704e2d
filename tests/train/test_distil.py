"""Distillation of a quality student on real faces."""
import numpy as np

from conftest import shared_path


def test_distil_tiny_run_lowers_its_loss_and_writes_loadable_outputs(tmp_path):
    from streamfiqa.train.distil import DistilConfig, distil
    from streamfiqa.eval.facedata import celeba_ids_dir
    from streamfiqa.quality.scorers import create_scorer

    pt = shared_path("models/mobilefacenet/mobilefacenet_ms1m_arcface.pt")
    cfg = DistilConfig(arch="mfn80", teacher_fr="mobilefacenet", teacher_fr_args={"weights": str(pt), "device": "cpu"},
                       init=str(pt), epochs=3, variants=1, max_photos=48, batch_size=16, lr=1e-3, val_fraction=0.2)
    out = distil([str(celeba_ids_dir())], tmp_path / "st", cfg, progress=False)
    losses = [h["train_loss"] for h in out["history"]]
    assert losses[-1] < losses[0]
    scorer = create_scorer("student", weights=out["out"])
    assert scorer.score(np.zeros((2, 112, 112, 3), np.uint8)).shape == (2,)
    assert (tmp_path / "st" / "student.onnx").stat().st_size > 100_000
    # resumable: a second call with resume picks up after the last epoch and changes nothing
    again = distil([str(celeba_ids_dir())], tmp_path / "st", cfg, resume=True, progress=False)
    assert len(again["history"]) == 3
