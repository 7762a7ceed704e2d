"""Backends: ONNX Runtime vs torch parity, batch-size invariance, order, engine-cache keys, TensorRT (gpu)."""
import copy
import importlib.util
import threading

import numpy as np
import pytest
import torch

from streamfiqa.backends import create_backend, written_whole
from streamfiqa.backends.tensorrt_backend import engine_path
from streamfiqa.models.ediffiqa import EDifFIQA


@pytest.fixture(scope="module")
def model_and_onnx(tmp_path_factory):
    from engines.export import export_onnx

    torch.manual_seed(0)
    model = EDifFIQA("S").eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1), m.running_var.uniform_(0.5, 2.0)
    return model, export_onnx(model, tmp_path_factory.mktemp("onnx") / "s.onnx")


@pytest.fixture(scope="module")
def batch():
    return torch.rand(17, 3, 112, 112, generator=torch.Generator().manual_seed(1)) * 2 - 1  # tails of 5 and 8


def test_an_export_appears_whole_or_not_at_all_and_a_failed_one_leaves_nothing_behind(model_and_onnx, tmp_path):
    from engines.export import export_onnx

    model, _ = model_and_onnx
    out = export_onnx(model, tmp_path / "m.onnx")
    before = out.read_bytes()

    class Broken(torch.nn.Module):
        def forward(self, x):
            raise RuntimeError("broken halfway through the export")

    with pytest.raises(RuntimeError, match="broken halfway"):
        export_onnx(Broken(), out)
    assert out.read_bytes() == before  # the model there before is still whole
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]  # and no part is left beside it


def test_two_writers_of_one_cache_file_at_once_never_write_into_one_file(tmp_path):
    """Two processes (here threads) making the same cache file at once: each writes its own part, the file that
    stays is one writer's whole content."""
    target, both_half_done = tmp_path / "cache" / "engine.plan", threading.Barrier(2, timeout=30)
    blobs = [bytes([k]) * 4096 for k in (1, 2)]

    def write(blob):
        with written_whole(target) as part, open(part, "wb") as f:
            f.write(blob[:1000])
            f.flush()
            both_half_done.wait()  # both parts are open and half written now
            f.write(blob[1000:])

    writers = [threading.Thread(target=write, args=(b,)) for b in blobs]
    [w.start() for w in writers]
    [w.join() for w in writers]
    assert target.read_bytes() in blobs
    assert [p.name for p in target.parent.iterdir()] == ["engine.plan"]


def test_onnxruntime_matches_torch(model_and_onnx, batch):
    model, onnx = model_and_onnx
    t = create_backend("torch", module=model, device="cpu").run(batch)[0]
    o = create_backend("onnxruntime", onnx_path=str(onnx)).run(batch.numpy())[0]
    assert np.abs(t - o).max() <= 1e-4


needs_openvino = pytest.mark.skipif(importlib.util.find_spec("openvino") is None,
                                    reason="needs openvino (pip install 'streamfiqa[openvino]')")


@needs_openvino
def test_openvino_matches_torch(model_and_onnx, batch):
    model, onnx = model_and_onnx
    t = create_backend("torch", module=model, device="cpu").run(batch)[0]
    o = create_backend("openvino", onnx_path=str(onnx), max_batch=16).run(batch.numpy())[0]
    assert np.abs(t - o).max() <= 1e-3


@needs_openvino
def test_openvino_detector_and_student_agree_with_onnxruntime_on_real_faces(group_photo):
    from streamfiqa.align import Aligner
    from streamfiqa.detect import create_detector
    from streamfiqa.quality.scorers import create_scorer
    from streamfiqa.track.matching import iou_matrix

    found = {be: create_detector("retinaface", backend=be).detect(group_photo) for be in ("onnxruntime", "openvino")}
    a, b = found["onnxruntime"], found["openvino"]
    assert len(a) == len(b) >= 5 and (iou_matrix(a.boxes, b.boxes).max(1) > 0.95).all()
    crops = Aligner().align(group_photo, a).aligned
    q = {be: create_scorer("fiqa_fast", backend=be).score(crops) for be in ("onnxruntime", "openvino")}
    assert np.abs(q["onnxruntime"] - q["openvino"]).max() < 1e-3


@needs_openvino
def test_precision_travels_from_config_and_a_backend_names_what_it_runs(group_photo):
    from streamfiqa.config import load_config
    from streamfiqa.detect import detector_from_config
    from streamfiqa.quality.scorers import create_scorer

    cfg = load_config(overrides=["detector.backend=openvino", "detector.precision=bf16"])
    faces = detector_from_config(cfg.detector).detect(group_photo)
    assert len(faces) >= 5  # bf16 RetinaFace still finds the group
    with pytest.raises(ValueError, match="onnxruntime backend: expected precision fp32.*openvino"):
        detector_from_config(load_config(overrides=["detector.precision=bf16"]).detector)
    with pytest.raises(ValueError, match="openvino backend: expected precision f32 .* or bf16, found 'int4'"):
        create_scorer("fiqa_fast", backend="openvino", precision="int4")


@pytest.mark.parametrize("kind", ["torch", "onnxruntime"])
def test_same_scores_at_any_batch_size_and_never_reordered(model_and_onnx, batch, kind):
    model, onnx = model_and_onnx
    ref = create_backend(kind, module=model, onnx_path=str(onnx), device="cpu", max_batch=64).run(batch)[0]
    small = create_backend(kind, module=model, onnx_path=str(onnx), device="cpu", max_batch=5).run(batch)[0]
    np.testing.assert_allclose(small, ref, atol=1e-5)
    perm = np.random.default_rng(0).permutation(len(batch))
    shuffled = create_backend(kind, module=model, onnx_path=str(onnx), device="cpu", max_batch=8).run(batch[perm])[0]
    np.testing.assert_allclose(shuffled, ref[perm], atol=1e-5)


def test_wrong_input_shape_is_named(model_and_onnx):
    model, onnx = model_and_onnx
    with pytest.raises(ValueError, match=r"expected input \(N, 3, 112, 112\), found \(2, 3, 64, 64\)"):
        create_backend("torch", module=model, device="cpu").run(torch.zeros(2, 3, 64, 64))


def test_an_execution_provider_asked_for_is_never_replaced_silently(model_and_onnx, caplog):
    """``detector.providers: [CUDAExecutionProvider]`` on a CPU-only install ran on the CPU without a word, and a
    mistyped provider name was dropped the same way."""
    import onnxruntime as ort

    _, path = model_and_onnx
    with pytest.raises(ValueError, match="unknown execution provider.*Cuda.*available here: .*CPUExecutionProvider"):
        create_backend("onnxruntime", onnx_path=str(path), providers=["Cuda"])
    absent = next((p for p in ort.get_all_providers() if p not in ort.get_available_providers()), None)
    if absent is not None:
        with caplog.at_level("WARNING", logger="streamfiqa.backends.onnxruntime_backend"):
            backend = create_backend("onnxruntime", onnx_path=str(path), providers=[absent, "CPUExecutionProvider"])
        assert f"{absent} not available" in caplog.text and backend.providers == ["CPUExecutionProvider"]


def test_auto_without_an_onnx_model_is_torch(model_and_onnx):
    assert create_backend("auto", module=model_and_onnx[0], device="cpu").kind == "torch"
    with pytest.raises(ValueError, match="valid names: onnxruntime, openvino, tensorrt, torch"):
        create_backend("coreml")


def test_engine_cache_key_changes_with_model_precision_gpu_and_version(tmp_path, model_and_onnx):
    onnx = model_and_onnx[1]
    base = engine_path(tmp_path, onnx, "fp16", (1, 64, 256), "NVIDIA H100", "10.8.0")
    assert base == engine_path(tmp_path, onnx, "fp16", (1, 64, 256), "NVIDIA H100", "10.8.0")
    assert base != engine_path(tmp_path, onnx, "fp32", (1, 64, 256), "NVIDIA H100", "10.8.0")
    assert base != engine_path(tmp_path, onnx, "fp16", (1, 64, 512), "NVIDIA H100", "10.8.0")
    assert base != engine_path(tmp_path, onnx, "fp16", (1, 64, 256), "NVIDIA A10", "10.8.0")
    assert base != engine_path(tmp_path, onnx, "fp16", (1, 64, 256), "NVIDIA H100", "10.9.0")
    changed = tmp_path / "s.onnx"
    changed.write_bytes(onnx.read_bytes() + b"\0")
    assert engine_path(tmp_path, changed, "fp16", (1, 64, 256), "NVIDIA H100", "10.8.0").name != base.name


@pytest.mark.gpu
@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is None or not torch.cuda.is_available(),
                    reason="needs TensorRT and a CUDA GPU (not on CI)")
def test_tensorrt_fp16_matches_torch(model_and_onnx, batch, tmp_path):
    model, onnx = model_and_onnx
    ref = create_backend("torch", module=model, device="cpu").run(batch)[0]
    trt = create_backend("tensorrt", onnx_path=str(onnx), precision="fp16", max_batch=64, cache_dir=tmp_path)
    assert np.abs(trt.run(batch)[0].reshape(-1) - ref.reshape(-1)).max() <= 1e-2
    again = create_backend("tensorrt", onnx_path=str(onnx), precision="fp16", max_batch=64, cache_dir=tmp_path)
    assert again.engine_file == trt.engine_file and len(list(tmp_path.glob("*.engine"))) == 1


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (not on CI)")
def test_torch_cuda_fp16_matches_cpu(model_and_onnx, batch):
    model, _ = model_and_onnx
    ref = create_backend("torch", module=model, device="cpu").run(batch)[0]
    cuda = create_backend("torch", module=copy.deepcopy(model), device="cuda", half=True, max_batch=16)  # it moves the module
    assert cuda.dtype == torch.float16
    got = cuda.run(batch)[0]  # 37 faces in batches of 16: the short last batch too
    assert got.shape == ref.shape and np.abs(got.reshape(-1) - ref.reshape(-1)).max() <= 1e-2
