"""The score, models and degrade commands, run as subprocesses on real photos."""
import json
import subprocess
import sys

import torch

from conftest import ROOT, shared_path


def cli(*args, timeout=300):
    return subprocess.run([sys.executable, str(ROOT / "run_stream.py"), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def test_score_prints_one_json_line_per_face():
    from streamfiqa.eval.synth import sample_photo

    out = cli("score", str(sample_photo()), "--scorer", "crop_iqa")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(rows) == 6 and [r["face"] for r in rows] == list(range(6))
    assert all(set(r) == {"path", "face", "scorer", "score"} and 0 < r["score"] <= 1 for r in rows)


def test_score_aligned_crops_with_an_official_layout_checkpoint(tmp_path, group_photo, mtcnn):
    import cv2

    from streamfiqa.align import Aligner
    from streamfiqa.models.ediffiqa import EDifFIQA

    for k, crop in enumerate(Aligner().align(group_photo, mtcnn.detect(group_photo)).aligned[:2]):
        cv2.imwrite(str(tmp_path / f"{k}.png"), crop)
    torch.manual_seed(0)
    torch.save(EDifFIQA("S").state_dict(), tmp_path / "ediffiqaS.pth")
    out = cli("score", str(tmp_path), "--aligned", "--scorer", "ediffiqa", "--arg", f"weights={tmp_path / 'ediffiqaS.pth'}")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["path"].endswith(f"{k}.png") for k, r in enumerate(rows)] == [True, True]
    assert "stretched" not in out.stderr
    # a crop of another layout (112×96) is scored, stretched, and the log says so
    cv2.imwrite(str(tmp_path / "0.png"), crop[:, 8:104])
    out = cli("score", str(tmp_path / "0.png"), "--aligned")
    assert out.returncode == 0 and "96×112 is no square aligned crop: stretched" in out.stderr, out.stderr


def test_score_reports_a_missing_checkpoint_clearly(tmp_path):
    from streamfiqa.eval.synth import sample_photo

    out = cli("score", str(sample_photo()), "--scorer", "ediffiqa", "--arg", f"weights={tmp_path}/none.pth")
    assert out.returncode == 2 and "expected a file at weights=" in out.stderr and "Traceback" not in out.stderr


def test_score_of_nothing_readable_is_an_error_not_an_empty_success(tmp_path):
    """A file named like a photo that is not one: one line, exit 2 (an empty stdout with exit 0 reads as "no face")."""
    (tmp_path / "notes.jpg").write_text("not a photo")
    out = cli("score", str(tmp_path / "notes.jpg"))
    assert out.returncode == 2 and "expected readable images, found none" in out.stderr
    assert out.stdout == "" and "Traceback" not in out.stderr
    (tmp_path / "clip.mp4").write_bytes(b"")  # a video given to score: said how its faces are scored
    out = cli("score", str(tmp_path / "clip.mp4"))
    assert out.returncode == 2 and "a video's faces are scored by a run: streamfiqa" in out.stderr


def test_models_lists_every_scorer_with_its_weights():
    out = cli("models", "--json")
    rows = {r["name"]: r for r in map(json.loads, out.stdout.splitlines())}
    assert rows["crop_iqa"]["available"] and rows["facenet_fusion"]["available"] and rows["facenet"]["available"]
    assert not rows["ediffiqa"]["available"] and "weights=PATH" in rows["ediffiqa"]["weights"]
    assert {"tier0", "grafiqs", "diffiqa", "facenet_stability", "iresnet", "arcface_onnx"} <= set(rows)


def test_degrade_reports_the_table_per_kind():
    from streamfiqa.eval.synth import sample_photo

    out = cli("degrade", str(sample_photo()), "--scorer", "crop_iqa")  # one photo: its largest face
    assert out.returncode == 0, out.stderr
    row = json.loads(out.stdout)
    assert row["faces"] == 1 and set(row["clean_above_degraded"]) == {"blur", "downscale", "noise", "jpeg", "dark",
                                                                      "occlusion"}
    if shared_path("data/faces/celeba_ids/identities.csv").is_file():  # held-out faces, the default scorer
        out = cli("degrade", "--max-photos", "40")
        row = json.loads(out.stdout)
        assert row["scorer"] == "fiqa_fast" and row["faces"] == 40
        assert min(row["clean_above_degraded"].values()) >= 0.9, row
