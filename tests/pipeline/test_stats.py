"""The run's counters and its summary."""


def test_run_summaries_of_several_runners_add_up():
    """A fleet's workers each summarise their own part of a run: counts add, a lag keeps its largest, the run's
    time is the whole run's."""
    from streamfiqa.pipeline.stats import merged_summary

    a = {"elapsed_s": 5.0, "stream_s": 10.0, "frames_processed": 250, "events_by_kind": {"best": 2},
         "publish_close_complete": True, "versions": {"av": "18"},
         "sources": {"cam1": {"processed": 250, "max_lag_s": 0.4, "rotation": 0, "error": None}}}
    b = {"elapsed_s": 6.0, "stream_s": 4.0, "frames_processed": 100, "events_by_kind": {"best": 1, "update": 3},
         "publish_close_complete": True, "versions": {"av": "18"},
         "sources": {"cam1": {"processed": 60, "max_lag_s": 0.7, "rotation": 0, "error": None},
                     "cam2": {"processed": 40, "max_lag_s": 0.1, "rotation": 90, "error": "gone"}}}
    m = merged_summary([a, b], 8.0, {"workers": 2, "restarts": 1})
    assert m["frames_processed"] == 350 and m["events_by_kind"] == {"best": 3, "update": 3}
    assert m["sources"]["cam1"] == {"processed": 310, "max_lag_s": 0.7, "rotation": 0, "error": None}
    assert m["sources"]["cam2"]["error"] == "gone" and m["versions"] == {"av": "18"}
    assert m["elapsed_s"] == 8.0 and m["realtime_factor"] == 1.75 and m["fleet"]["restarts"] == 1
