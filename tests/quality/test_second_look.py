"""The second look: a second recogniser re-ranks a track's leading faces by its own typicality."""
import numpy as np
import pytest

from streamfiqa.events import Candidate
from streamfiqa.quality.second_look import SecondLook


def leaders(group_photo):
    """Five JPEG-varied crops of one real face of the group photo and one crop of another person, ranked by
    typicality (as a track's leaders come to the second look), the other person first."""
    from streamfiqa.align import Aligner
    from streamfiqa.detect import create_detector
    from streamfiqa.eval.degrade import jpeg

    crops = Aligner().align(group_photo, create_detector("retinaface").detect(group_photo))
    aligned = [crops.aligned[1]] + [jpeg(crops.aligned[0], 40 + 10 * f) for f in range(5)]
    out = []
    for f, a in enumerate(aligned):
        c = Candidate(0.99 - 0.01 * f, "typicality", {}, {}, True, [], f, f / 25, 0.0, np.zeros(4), np.zeros((5, 2)),
                      0.99, a, crops.display[0], typicality=0.99 - 0.01 * f)
        out.append(c)
    return out


def test_the_second_recogniser_puts_another_person_behind_the_person_and_ineligible_faces_last(group_photo):
    cands = leaders(group_photo)
    look = SecondLook()
    flags = [False] * 5 + [True]  # the last crop of the person is outside the quality band
    ranked = look(cands, flags)
    order = [c.frame_index for c in ranked]
    assert order[-1] == 5 and order[-2] == 0, order  # the other person behind every eligible face of the person
    assert all("typicality_facenet" in c.scores and c.score == pytest.approx(c.scores["typicality_facenet"], abs=1e-5)
               for c in ranked)
    assert look.looked == 6 and look.reranked == 1
    keys = [c.score for c in ranked[:-1]]
    assert keys == sorted(keys, reverse=True)


def test_too_few_eligible_faces_keep_the_track_s_order(group_photo):
    cands = leaders(group_photo)
    assert SecondLook()(cands, [False, False] + [True] * 4) == cands
    assert not any("typicality_facenet" in c.scores for c in cands)


def test_every_camera_s_second_look_shares_one_loaded_model():
    assert SecondLook()._load() is SecondLook("facenet_onnx", {})._load()


def test_facenet_on_onnx_runtime_ranks_as_its_torch_port_under_the_same_key(group_photo):
    """The default runs FaceNet's ONNX export (a third faster); the torch port gives the same order and cosines."""
    ranked = {fr: SecondLook(fr)(leaders(group_photo), [False] * 5 + [True]) for fr in ("facenet_onnx", "facenet")}
    onnx, port = ranked["facenet_onnx"], ranked["facenet"]
    assert [c.frame_index for c in onnx] == [c.frame_index for c in port]
    assert all(a.scores["typicality_facenet"] == pytest.approx(b.scores["typicality_facenet"], abs=1e-4)
               for a, b in zip(onnx, port))


def test_facenet_in_int8_ranks_as_the_float_model_under_the_same_key(group_photo):
    """FaceNet quantised (2.7x faster, opt-in) gives the float model's order here, and cosines within
    3e-3 (the other person's moves the most)."""
    ranked = {fr: SecondLook(fr)(leaders(group_photo), [False] * 5 + [True]) for fr in ("facenet_int8", "facenet_onnx")}
    int8, fp32 = ranked["facenet_int8"], ranked["facenet_onnx"]
    assert [c.frame_index for c in int8] == [c.frame_index for c in fp32]
    assert all(a.scores["typicality_facenet"] == pytest.approx(b.scores["typicality_facenet"], abs=3e-3)
               for a, b in zip(int8, fp32))  # measured: 0.0023 at most


def test_an_unknown_or_incomplete_recogniser_fails_at_construction_naming_the_key():
    with pytest.raises(ValueError, match="selection.second_look.*valid names.*facenet"):
        SecondLook("nope")
    with pytest.raises(ValueError, match="second_look_args to give weights"):
        SecondLook("mobilefacenet")
    # an argument the model does not take: refused here too (it was a traceback at the first track's end)
    with pytest.raises(ValueError, match="selection.second_look 'facenet_onnx': .*unknown argument.*bogus"):
        SecondLook("facenet_onnx", {"bogus": 1})
