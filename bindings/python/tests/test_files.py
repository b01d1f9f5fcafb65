"""safetensors reading and the .hcz archive from Python."""
import json
import os
import struct

import numpy as np
import pytest

import hypercomp
from conftest import gauss, matrix


def read_st(path):
    """A plain reading of the safetensors layout (8-byte header length, JSON, data) to compare with."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] != "F32":
            continue
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype="<f4").reshape(info["shape"])
    return out


def test_safetensors_tensors_match_a_plain_reading(data_dir):
    path = os.path.join(data_dir, "ppocr-rec-subset.safetensors")
    ref = read_st(path)
    with hypercomp.SafeTensors(path) as st:
        assert len(st) >= len(ref) > 0
        assert set(ref) <= set(st.names())
        for name, want in ref.items():
            assert st.dtype(name) == "F32"
            np.testing.assert_array_equal(st.tensor(name), want)
        name = max(ref, key=lambda k: ref[k].size)
        ct = st.compress(name, hypercomp.Compressor("fp16"))
        assert ct.measure(ref[name]).rel_rmse < 1e-3
        with pytest.raises(hypercomp.NotFound) as e:
            st.tensor("no.such.tensor")
        assert "no.such.tensor" in e.value.message


def test_safetensors_missing_file_is_an_io_error(tmp_path):
    with pytest.raises(hypercomp.IOFailure) as e:
        hypercomp.SafeTensors(tmp_path / "absent.safetensors")
    assert e.value.status_name == "HC_EIO" and "absent" in e.value.message


def test_archive_round_trip(tmp_path):
    path = tmp_path / "m.hcz"
    w1, w2, bias = matrix(), gauss(40, (32, 64)), gauss(41, 64)
    c = hypercomp.Compressor("nf4")
    ct1, ct2 = c.compress(w1, name="w1"), hypercomp.Compressor("int8").compress(w2, name="w2")
    with hypercomp.ArchiveWriter(path) as aw:
        aw.set_metadata("source", "python test")
        aw.add("w1", ct1)
        aw.add("w2", ct2)
        aw.add_uncompressed("bias", bias)
    with hypercomp.Archive(path) as a:
        assert a.names() == ["w1", "w2", "bias"]
        assert a.metadata()["source"] == "python test"
        e = a.entry("w1")
        assert e.codec_name == "nf4" and e.shape == (64, 256) and e.numel == w1.size
        assert e.serialized_bytes == len(ct1.serialize())
        assert a.tensor("w1").serialize() == ct1.serialize()
        assert a.tensor("w2").serialize() == ct2.serialize()
        np.testing.assert_array_equal(a.tensor("bias").decode(), bias)
        with pytest.raises(hypercomp.NotFound):
            a.tensor("w3")


def test_corrupt_archive_is_a_format_error(tmp_path):
    path = tmp_path / "m.hcz"
    with hypercomp.ArchiveWriter(path) as aw:
        aw.add("w", hypercomp.Compressor("nf4").compress(matrix()))
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x40
    bad = tmp_path / "bad.hcz"
    bad.write_bytes(bytes(raw))
    with pytest.raises(hypercomp.FormatError):
        a = hypercomp.Archive(bad)
        a.tensor("w")


def test_unfinished_archive_after_an_exception_is_not_written(tmp_path):
    path = tmp_path / "never.hcz"
    with pytest.raises(RuntimeError):
        with hypercomp.ArchiveWriter(path) as aw:
            aw.add("w", hypercomp.Compressor("nf4").compress(matrix()))
            raise RuntimeError("abandon")
    with pytest.raises(hypercomp.Error):
        hypercomp.Archive(path)


def test_pipeline_streams_into_an_archive(tmp_path):
    path = tmp_path / "p.hcz"
    model = {"a": gauss(50, (16, 64)), "b": gauss(51, (16, 64))}
    p = hypercomp.Pipeline(mode="escalate")
    p.add_stage("fp16", "fp16", gate="rel_rmse<=1e-3")
    with hypercomp.ArchiveWriter(path) as aw:
        p.compress_model(model, sink=aw)
    with hypercomp.Archive(path) as a:
        assert a.names() == ["a", "b"]
        for k, w in model.items():
            assert a.tensor(k).measure(w).rel_rmse <= 1e-3


def test_pipeline_failure_abandons_the_archive(tmp_path):
    path = tmp_path / "p.hcz"
    p = hypercomp.Pipeline(mode="escalate")
    p.add_stage("fp16", "fp16")

    def cb(m):
        if m.tensor == "b":
            raise LookupError("stop at b")
    p.set_callback(cb)
    with pytest.raises(LookupError, match="stop at b"):
        with hypercomp.ArchiveWriter(path) as aw:
            p.compress_model({"a": gauss(52, (16, 64)), "b": gauss(53, (16, 64))}, sink=aw)
    with pytest.raises(hypercomp.Error):
        hypercomp.Archive(path)


def test_safetensors_writer_round_trip(tmp_path):
    path = tmp_path / "w.safetensors"
    a, b = gauss(50, (16, 24)), gauss(51, 7).astype(np.float16)
    with hypercomp.SafeTensorsWriter(path) as w:
        w.set_metadata("format", "pt")
        w.add("a", a)
        w.add("b", b)
    ref = read_st(path)
    np.testing.assert_array_equal(ref["a"], a)
    with hypercomp.SafeTensors(path) as st:
        assert st.names() == ["a", "b"] and st.dtype("b") == "F16" and st.metadata("format") == "pt"
        np.testing.assert_array_equal(st.tensor("b"), b)


def test_safetensors_writer_unfinished_leaves_no_file(tmp_path):
    path = tmp_path / "never.safetensors"
    with pytest.raises(RuntimeError):
        with hypercomp.SafeTensorsWriter(path) as w:
            w.add("a", gauss(52, (4, 4)))
            raise RuntimeError("stop before finishing")
    assert os.listdir(tmp_path) == []
    with hypercomp.SafeTensorsWriter(path) as w:
        w.add("a", gauss(53, 4))
        with pytest.raises(hypercomp.InvalidArgument) as e:
            w.add("a", gauss(54, 4))
        assert "'a'" in e.value.message


def test_archive_from_bytes_and_tensor_lifetime(tmp_path):
    path = tmp_path / "m.hcz"
    w = matrix()
    with hypercomp.ArchiveWriter(path) as aw:
        aw.add("w", hypercomp.Compressor("nf4").compress(w, name="w"))
    data = bytearray(path.read_bytes())
    a = hypercomp.Archive.from_bytes(data)
    data[:] = b"\0" * len(data)           # the archive holds its own copy
    t = a.tensor("w")
    del a                                 # the tensor keeps its archive open
    want = hypercomp.Archive(path).tensor("w").decode()
    np.testing.assert_array_equal(t.decode(), want)
    a2 = hypercomp.Archive(path)
    t2 = a2.tensor("w")
    a2.close()                            # closing the archive closes its tensors first
    with pytest.raises(ValueError) as e:
        t2.decode()
    assert "closed" in str(e.value)
    bad = bytearray(path.read_bytes())
    bad[0] ^= 0xFF
    with pytest.raises(hypercomp.FormatError):
        hypercomp.Archive.from_bytes(bad)
