"""ONNX / TorchScript export of the inference encoder: onnxruntime must give PyTorch's
descriptors on the same images, at any batch size."""
from __future__ import annotations

import pytest
import torch

from _make_checkpoint import make_checkpoint
from _make_datasets import write_jpeg
from streid_core.cli import main
from streid_core.data.preprocessor import ReidImageDataset
from streid_core.data.records import Record
from streid_core.errors import StreidError
from streid_core.evaluation.export import (export_onnx, export_torchscript, max_abs_difference, onnx_features,
                                           onnx_metadata, onnx_session)
from streid_core.models.reid import ReIDEncoder
from streid_core.models.loading import load_encoder

H, W = 64, 32
TOLERANCE = 1e-4


def _image_batch(folder, count: int) -> torch.Tensor:
    """`count` real JPEGs of different identities, through the evaluation transform."""
    records = [Record(str(write_jpeg(folder / f"{i:04d}.jpg", pid=i, variant=i, size=(24, 48))), i, 0)
               for i in range(count)]
    dataset = ReidImageDataset(records, {}, "test", height=H, width=W)
    return torch.stack([dataset[i]["image"] for i in range(count)])


@pytest.fixture(scope="module")
def encoder() -> ReIDEncoder:
    torch.manual_seed(0)
    return ReIDEncoder("resnet18", num_classes=5).eval()


@pytest.fixture(scope="module")
def dynamo_onnx(encoder, tmp_path_factory):
    return export_onnx(encoder, tmp_path_factory.mktemp("onnx") / "encoder.onnx", H, W, exporter="dynamo")


@pytest.mark.precision
def test_dynamo_onnx_matches_torch_on_the_same_images_at_any_batch_size(encoder, dynamo_onnx, tmp_path):
    session = onnx_session(dynamo_onnx, threads=1)
    images = _image_batch(tmp_path, 5)
    with torch.no_grad():
        reference = encoder(images).numpy()
    for batch in (1, 2, 5):  # exported with batch 2: 1 and 5 prove the batch axis is dynamic
        out = onnx_features(session, images[:batch])
        assert out.shape == (batch, encoder.feature_dim)
        assert abs(out - reference[:batch]).max() <= TOLERANCE
    chunked = onnx_features(session, images, batch_size=2)  # 2 + 2 + 1
    assert abs(chunked - reference).max() <= TOLERANCE


def test_onnx_file_documents_its_input(dynamo_onnx):
    session = onnx_session(dynamo_onnx)
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, out.name) == ("images", "features")
    assert isinstance(inp.shape[0], str) and inp.shape[1:] == [3, H, W]
    meta = onnx_metadata(dynamo_onnx)
    assert (meta["height"], meta["width"], meta["feature_dim"]) == (str(H), str(W), "512")
    assert meta["mean"] == "0.485,0.456,0.406" and meta["std"] == "0.229,0.224,0.225"


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_export_leaves_the_callers_model_as_it_was(tmp_path):
    model = ReIDEncoder("resnet18", test_bn=True).train()
    path = export_torchscript(model, tmp_path / "m.pt", H, W)
    assert model.training and path.is_file()
    # test_bn: the exported forward is the BN-neck output, as the eval-mode model computes it
    images = _image_batch(tmp_path, 3)
    loaded = torch.jit.load(str(path))
    with torch.no_grad():
        model.eval()
        assert torch.allclose(loaded(images), model(images), atol=1e-5)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_cli_exports_a_checkpoint_with_the_torchscript_onnx_exporter_and_torchscript(tmp_path, capsys):
    checkpoint = make_checkpoint(tmp_path / "checkpoint.pth.tar", height=H, width=W)
    rc = main(["export", "--checkpoint", str(checkpoint), "--onnx", str(tmp_path / "e.onnx"),
               "--exporter", "torchscript", "--torchscript", str(tmp_path / "e.pt")])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "max abs difference" in printed
    model, size = load_encoder(checkpoint)
    assert size == (H, W)
    images = _image_batch(tmp_path, 4)
    error, _ = max_abs_difference(model, onnx_session(tmp_path / "e.onnx"), images)
    assert error <= TOLERANCE
    with torch.no_grad():
        assert torch.allclose(torch.jit.load(str(tmp_path / "e.pt"))(images), model(images), atol=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temp files left


def test_cli_user_errors_exit_2_with_one_line(tmp_path, capsys):
    assert main(["export", "--checkpoint", str(tmp_path / "missing.pth.tar"), "--onnx", str(tmp_path / "x.onnx")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    checkpoint = make_checkpoint(tmp_path / "c.pth.tar", height=H, width=W)
    assert main(["export", "--checkpoint", str(checkpoint)]) == 2
    err = capsys.readouterr().err
    assert "nothing to export" in err and len(err.strip().splitlines()) == 1


def test_bad_onnx_inputs_are_user_errors(tmp_path, encoder):
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    with pytest.raises(StreidError, match="not a readable ONNX file"):
        onnx_session(tmp_path / "bad.onnx")
    with pytest.raises(StreidError, match="not found"):
        onnx_session(tmp_path / "none.onnx")
    with pytest.raises(StreidError, match="unknown ONNX exporter"):
        export_onnx(encoder, tmp_path / "x.onnx", H, W, exporter="tf")
