import pytest

from streamfiqa.config import ConfigError, load_config


def test_defaults_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("tracker:\n  max_age: 7\npublish:\n  endpoint: tcp://127.0.0.1:6000\n")
    cfg = load_config(path, ["tracker.min_hits=5", "sources.stride=2"], base={"selection.top_k": 4})
    assert (cfg.tracker.max_age, cfg.tracker.min_hits, cfg.sources.stride, cfg.selection.top_k) == (7, 5, 2, 4)
    assert cfg.publish.endpoint == "tcp://127.0.0.1:6000"


def test_a_config_file_that_is_no_utf8_text_is_named(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_bytes("tracker:\n  max_age: 7  # sieben Bilder\n".encode("utf-16"))  # saved by a Windows editor
    with pytest.raises(ConfigError, match=r"c.yaml: expected UTF-8 YAML text, found a byte that is not UTF-8"):
        load_config(path)


def test_a_number_with_an_exponent_is_a_number():
    # YAML 1.1 reads 1e9 (no dot) as a string; a float key takes it, and still refuses words and infinities
    assert load_config(None, ["sources.cut_change=1e9"]).sources.cut_change == 1e9
    with pytest.raises(ConfigError, match="expected float, found 'lots'"):
        load_config(None, ["sources.cut_change=lots"])
    with pytest.raises(ConfigError, match="finite"):
        load_config(None, ["sources.cut_change=inf"])


@pytest.mark.parametrize("override, message", [
    ("tracker.maxage=3", r"unknown config key 'tracker.maxage'; allowed keys here: .*max_age"),
    ("pipeline=batch", r"'pipeline': expected one of cctv, enroll, offline, found 'batch'"),
    ("sources.rtsp_transport=http", r"expected one of tcp, udp"),
    ("tracker.max_age=soon", r"'tracker.max_age': expected int, found 'soon'"),
    ("nonsense", r"expected key=value"),
    ("metrics.port=99999", r"'metrics.port': expected a value >= 0 and <= 65535, found 99999"),  # was a traceback
])
def test_errors_name_the_key_and_the_allowed_values(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides=[override])


def test_shipped_configs_load():
    from pathlib import Path

    for path in sorted((Path(__file__).parents[1] / "configs").glob("*.yaml")):
        cfg = load_config(path)
        assert path.stem.split("_")[0] == cfg.pipeline


@pytest.mark.parametrize("name", ["cctv", "enroll", "offline"])
def test_a_journeys_shipped_file_is_its_pipelines_defaults(name):
    """`--pipeline NAME` and `--config configs/NAME.yaml` run the same configuration: the file restates the
    pipeline's DEFAULTS (what the benches measure), so neither can drift from the other unseen."""
    import dataclasses
    from pathlib import Path

    from pipelines import PIPELINES

    base = PIPELINES[name].DEFAULTS
    alone = dataclasses.asdict(load_config(None, base=base))
    with_file = dataclasses.asdict(load_config(Path(__file__).parents[1] / "configs" / f"{name}.yaml", base=base))
    assert with_file == alone


def test_a_scorer_spec_carries_its_arguments_and_naming_another_scorer_drops_them():
    from pipelines import offline
    from streamfiqa.config import ConfigError, load_config

    cfg = load_config(overrides=["quality.scorer_args.threads=1"], base=offline.DEFAULTS)
    assert cfg.quality.scorer == "fiqa_fast" and cfg.quality.scorer_args == {"precision": "int8", "threads": 1}
    cfg = load_config(overrides=["quality.scorer=crop_iqa"], base=offline.DEFAULTS)
    assert cfg.quality.scorer == "crop_iqa" and cfg.quality.scorer_args == {}
    cfg = load_config(overrides=["quality.heavy=fiqa_heavy:threads=1;flip=true"])
    assert cfg.quality.heavy == "fiqa_heavy" and cfg.quality.heavy_args == {"threads": 1, "flip": True}
    with pytest.raises(ConfigError, match="quality.scorer.*NAME:key=value"):
        load_config(overrides=["quality.scorer=fiqa_fast:int8"])


def test_an_unknown_detector_is_refused_when_built_with_the_registered_names():
    from streamfiqa.detect import detector_from_config, detector_names

    cfg = load_config(overrides=["detector.name=retina"])
    with pytest.raises(ValueError, match=r"unknown detector 'retina'; valid names: " + ", ".join(detector_names())):
        detector_from_config(cfg.detector)


def test_a_home_path_is_expanded_as_a_shell_would():
    """Neither YAML nor a shell expands ``~`` after ``--set key=``: ``output.dir: ~/runs`` wrote into a folder named
    ``~`` in the working directory."""
    import os

    cfg = load_config(overrides=["output.dir=~/runs", "quality.scorer_args={weights: ~/w.pth}"])
    home = os.path.expanduser("~")
    assert cfg.output.dir == f"{home}/runs" and cfg.quality.scorer_args == {"weights": f"{home}/w.pth"}
    assert load_config(overrides=["detector.model_path=~"]).detector.model_path is None  # YAML: ~ alone is null
    assert load_config(overrides=["output.dir=runs~/x"]).output.dir == "runs~/x"  # only a leading ~ is the home
