"""The video protocol (``streamfiqa eval --videos``) as bench rows: the published crop on real clips of the test half
and constructed cases, for the offline defaults and for ranking by the fast quality score alone."""
from __future__ import annotations

import logging

from bench.common import emit

log = logging.getLogger(__name__)

#: What each row runs: the offline defaults, and the same with the fast score ranking (the old selection).
RANKINGS = {"typical": [], "fast": ["selection.rank=fast"]}


def bench_video(results: list, quick: bool = False, half: str = "test", seed: int = 0) -> None:
    """Rows ``video`` and ``video_edc`` (per recogniser and ranking; the EDC per gallery) and ``video_cuts`` (per
    ranking) on ``half`` of the talking clips (skipped with a reason without ../shared). ``quick``: 2 cases per kind
    instead of 6."""
    from pipelines.offline import DEFAULTS
    from streamfiqa.eval.video import evaluate_videos, recognisers
    from streamfiqa.eval.videocases import case_folder, make_cases
    from streamfiqa.eval.videoset import read_video_set, talking_dir

    if not (talking_dir() / "MANIFEST.tsv").is_file():
        emit(results, {"bench": "video", "skipped": f"needs {talking_dir()} (../shared beside the checkout)"})
        return
    clips = list(read_video_set().half(half, seed))
    frs = recognisers(["buffalo_s", "mobilefacenet", "sface"])
    n = 2 if quick else 6
    # the cases are kept in the model cache: the same files for every run (videocases.case_folder)
    cases = make_cases(clips, case_folder(clips, f"cases-seed{seed}-n{n}"), n, seed)
    for rank, overrides in RANKINGS.items():
        result = evaluate_videos(clips, cases, frs, overrides, DEFAULTS,
                                 progress=lambda name: log.info("video bench (%s): %s done", rank, name))
        for fr, summary in result["summary"].items():
            emit(results, {"bench": "video", "half": half, "rank": rank, "recogniser": fr, **summary})
            for gallery, edc in result["gallery_edc"][fr].items():
                emit(results, {"bench": "video_edc", "half": half, "rank": rank, "recogniser": fr,
                               "gallery": gallery, **edc})
        emit(results, {"bench": "video_cuts", "half": half, "rank": rank, "clips": len(clips),
                       "cases": len(cases), **result["cuts"]})
