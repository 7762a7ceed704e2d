"""The faces' embeddings in a run: whichever scorer scores them and whatever the tracker is told, the typicality
ranking keeps its embeddings (without them a track's pick is its best fast score: at chance on real video)."""
import json

import pytest

from conftest import shared_path
from pipelines import offline
from streamfiqa.config import load_config

# andrew_clip_1, eyes shut (blinks) in its first 320 frames, found by looking (tests/pipeline/test_real_video.py)
SHUT = {*range(20, 32), *range(49, 53), *range(84, 88), *range(124, 127), *range(196, 200), *range(306, 309)}


@pytest.fixture(scope="module")
def andrew(tmp_path_factory):
    shared_path("data/videos/talking/MANIFEST.tsv")
    from streamfiqa.eval.videocases import excerpt
    from streamfiqa.eval.videoset import read_video_set

    (clip,) = [c for c in read_video_set().half("dev") if c.name == "FuxiVirtualHuman__styletalk__andrew_clip_1.mp4"]
    return excerpt(clip, tmp_path_factory.mktemp("andrew"), 0, 320).path


def best_of(path, out, *overrides) -> dict:
    cfg = load_config(overrides=[f"output.dir={out}", "stats_interval_s=0", *overrides], base=offline.DEFAULTS)
    assert offline.run([str(path)], cfg) == 0
    (best,) = [e for e in map(json.loads, (out / "events.jsonl").read_text().splitlines()) if e["event"] == "best"]
    return best


@pytest.mark.parametrize("overrides", [
    ["quality.scorer=crop_iqa"],        # a scorer with no FR backbone: fiqa_fast's backbone embeds beside it
    ["tracker.appearance=off"],         # geometry-only tracking still leaves selection its embeddings
], ids=["scorer-without-backbone", "tracker-appearance-off"])
def test_the_pick_stays_the_most_typical_face(andrew, tmp_path, overrides):
    best = best_of(andrew, tmp_path, *overrides)
    assert best["quality"]["decided_by"] == "typicality" and "typicality_facenet" in best["quality"]["scores"]
    assert best["frame_index"] not in SHUT and not {c["frame_index"] for c in best["candidates"]} & SHUT


def test_only_geometry_and_the_fast_ranking_together_leave_faces_unembedded(andrew, tmp_path):
    best = best_of(andrew, tmp_path, "tracker.appearance=off", "selection.rank=fast")
    assert best["quality"]["decided_by"] == "fiqa_fast" and "typicality" not in best["quality"]["scores"]


@pytest.mark.parametrize("overrides, name", [
    ([], "student:fiqa_fast"),
    (["quality.scorer=fiqa_heavy"], "student:fiqa_heavy"),
    (["quality.scorer=crop_iqa"], "student:fiqa_fast"),
    (["quality.scorer=crop_iqa", "tracker.appearance=off", "selection.rank=fast"], ""),
    (["tracker.appearance=off", "selection.rank=fast"], ""),
    (["tracker.appearance=facenet"], "facenet"),
])
def test_the_embedding_is_named_before_it_loads_as_after(overrides, name):
    """The cross-camera merge picks its threshold by the name before any model loads (``face_embedding_model``)."""
    from streamfiqa.pipeline.embed import embedding_name, face_embedder, face_embedding_model
    from streamfiqa.quality.scorers import create_scorer

    cfg = load_config(overrides=overrides, base=offline.DEFAULTS)
    scorer = create_scorer(cfg.quality.scorer, **cfg.quality.scorer_args)
    assert face_embedding_model(cfg) == embedding_name(face_embedder(cfg, scorer), scorer) == name


@pytest.mark.parametrize("overrides, utility", [
    ([], None),                                          # fiqa_fast's score is a predicted utility itself
    (["quality.scorer=fiqa_heavy"], None),
    (["quality.scorer=crop_iqa"], "embedder"),           # the fallback student's one pass gives both
    (["quality.scorer=null"], "embedder"),
    (["quality.scorer=crop_iqa", "tracker.appearance=facenet"], "fiqa_fast"),  # one more pass a face
    (["quality.scorer=crop_iqa", "selection.rank=fast", "quality.min_face_score=null"], None),  # no floor applies
])
def test_a_scorer_of_its_own_scale_gets_a_predicted_utility_beside_it(overrides, utility):
    from streamfiqa.pipeline.embed import face_embedder, utility_scorer
    from streamfiqa.quality.scorers import create_scorer

    cfg = load_config(overrides=overrides, base=offline.DEFAULTS)
    scorer = create_scorer(cfg.quality.scorer, **cfg.quality.scorer_args) if cfg.quality.scorer else None
    embedder = face_embedder(cfg, scorer)
    found = utility_scorer(cfg, scorer, embedder)
    if utility is None:
        assert found is None
    elif utility == "embedder":
        assert found is embedder and found.scale == "utility"
    else:
        assert found.name == utility and found is not embedder


def test_another_scorer_s_scale_is_not_held_against_the_face_floor(tmp_path):
    """The crowd clip's profile blurred past recognition (a track whose every face fails the gates) scores 0.59 with
    crop_iqa, over the 0.2 floor set on fiqa_fast's scale: it was published; its predicted utility is under it."""
    crowd = shared_path("data/videos/crowd_walk_1080p.mp4")
    cfg = load_config(overrides=[f"output.dir={tmp_path}", "stats_interval_s=0", "quality.scorer=crop_iqa",
                                 "quality.face_measures=false", "selection.second_look=null"], base=offline.DEFAULTS)
    assert offline.run([str(crowd)], cfg) == 0
    assert json.loads((tmp_path / "manifest.json").read_text())["rejected_tracks"] == {"unrecognisable": 1}
    best = [e for e in map(json.loads, (tmp_path / "events.jsonl").read_text().splitlines()) if e["event"] == "best"]
    assert len(best) == 8 and all({"crop_iqa", "fiqa_fast"} <= set(e["quality"]["scores"]) for e in best)


def test_a_floor_set_beside_another_scorer_is_said_to_be_on_the_utility_scale(caplog):
    """A config written when the README said to set the floors on another scorer's own scale is told how they read."""
    from streamfiqa.pipeline.embed import face_embedder, utility_scorer
    from streamfiqa.quality.scorers import create_scorer

    for overrides, warned in ((["quality.scorer=crop_iqa"], False),
                              (["quality.scorer=crop_iqa", "quality.min_face_score=0.6"], True),
                              (["quality.min_face_score=0.6"], False)):  # fiqa_fast: its own scale is the utility
        caplog.clear()
        cfg = load_config(overrides=overrides, base=offline.DEFAULTS)
        scorer = create_scorer(cfg.quality.scorer, **cfg.quality.scorer_args)
        utility_scorer(cfg, scorer, face_embedder(cfg, scorer))
        said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert bool(said) == warned and all("quality.min_face_score=0.6" in m and "crop_iqa" in m for m in said)
