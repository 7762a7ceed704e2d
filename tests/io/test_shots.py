"""Shot cuts on real clips of the development half (../shared/data/videos/talking)."""
import av
import pytest

from conftest import shared_path
from streamfiqa.io.shots import ShotCutDetector


@pytest.mark.parametrize("name, frame", [("OpenTalker__SadTalker__WDA_AlexandriaOcasioCortez_000.mp4", 1),
                                         ("ai-forever__ghost__dance.mp4", 1)])
def test_a_clip_s_first_frames_are_no_cut_candidates(name, frame):
    """Their second frame jumps (an encoder settling: 6.6 and 16.5 times the floor, no cut by looking); with no
    motion of the clip's own to compare with yet, the change reads 0 until ``min_history`` changes are known."""
    path = shared_path(f"data/videos/talking/{name}")
    det, early = ShotCutDetector(), ShotCutDetector(min_history=0)
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            img = f.to_ndarray(format="bgr24")
            (cut, change), (_, raw) = det.observe(img), early.observe(img)
            if i == frame:
                assert not cut and change == 0.0 and raw >= 5.0, raw
                break
