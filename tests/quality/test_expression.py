"""Face measures (eyes, mouth) as the selector uses them."""
from streamfiqa.quality.expression import FaceMeasures


def test_every_camera_s_measures_share_one_loaded_mesh():
    """A runner gives each source its own FaceMeasures; the networks behind them load once a process (one camera
    more must not cost another copy of the models)."""
    a, b = FaceMeasures(), FaceMeasures(0.2)
    assert a._load() is b._load()
