"""Compressors, compress/decode/matvec/stats, serialisation and the errors, through numpy."""
import array

import numpy as np
import pytest

import hypercomp
from conftest import gauss, matrix


def test_version_matches_the_library_string():
    major, minor, patch = hypercomp.version()
    assert hypercomp.version_string() == f"{major}.{minor}.{patch}"


def test_spec_is_canonical():
    c = hypercomp.Compressor("nf4")
    assert c.spec.startswith("nf4:")
    assert hypercomp.Compressor(c.spec).spec == c.spec


@pytest.mark.parametrize("spec,bound", [("f32", 0.0), ("fp16", 1e-3), ("bf16", 8e-3), ("int8", 2e-2), ("nf4", 0.12)])
def test_round_trip_within_bounds(spec, bound):
    w = gauss(1, (48, 128))
    ct = hypercomp.Compressor(spec).compress(w, name="w")
    d = ct.decode()
    assert d.shape == w.shape and d.dtype == np.float32
    rel = np.linalg.norm(d - w) / np.linalg.norm(w)
    assert rel <= bound
    st = ct.stats()
    assert isinstance(st, hypercomp.Stats)
    assert st.n_values == w.size
    assert st.bits == 8 * len(ct.serialize())
    assert st.bpw == pytest.approx(st.bits / w.size)
    assert st.rel_rmse == pytest.approx(rel, rel=1e-4, abs=1e-9)
    assert ct.shape == (48, 128) and ct.rows == 48 and ct.cols == 128 and ct.numel == w.size


def test_f16_input_and_f16_decode():
    w = gauss(2, (16, 64)).astype(np.float16)
    ct = hypercomp.Compressor("fp16").compress(w)
    assert ct.orig_dtype == hypercomp.DTYPE_F16
    np.testing.assert_array_equal(ct.decode("f16"), w)  # fp16 of f16 data is exact
    assert ct.decode_bytes("f16") == w.tobytes()


def test_decode_into_preallocated_array():
    w = gauss(3, (8, 32))
    ct = hypercomp.Compressor("f32").compress(w)
    out = np.zeros_like(w)
    assert ct.decode_into(out) is out
    np.testing.assert_array_equal(out, w)
    with pytest.raises(hypercomp.InvalidArgument) as e:
        ct.decode_into(np.zeros(10, dtype=np.float32))
    assert e.value.status_name == "HC_EINVAL" and e.value.message


def test_noncontiguous_input_is_made_contiguous():
    w = gauss(4, (64, 32))
    ct = hypercomp.Compressor("f32").compress(w.T)
    np.testing.assert_array_equal(ct.decode(), w.T)


def test_matvec_matches_the_decoded_product():
    w = matrix()
    x = gauss(5, 256)
    ct = hypercomp.Compressor("nf4").compress(w)
    y = ct.matvec(x)
    ref = ct.decode().astype(np.float64) @ x.astype(np.float64)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    ya = ct.matvec(array.array("f", x.tolist()))
    np.testing.assert_array_equal(np.array(ya, dtype=np.float32), y)
    with pytest.raises(hypercomp.InvalidArgument, match="255 values"):
        ct.matvec(x[:255])


def test_threads_do_not_change_the_result():
    w = gauss(6, (64, 256))
    c = hypercomp.Compressor("int8")
    one = c.compress(w).serialize()
    c.set_threads(2)
    assert c.compress(w).serialize() == one


def test_serialise_round_trip_and_measure():
    w = gauss(7, (32, 64))
    ct = hypercomp.Compressor("int8").compress(w, name="layer")
    blob = ct.serialize()
    back = hypercomp.CTensor.deserialize(blob)
    assert back.serialize() == blob
    np.testing.assert_array_equal(back.decode(), ct.decode())
    assert back.codec_name == "int8" and back.codec_id == 4
    m = back.measure(w)
    assert m.rel_rmse == pytest.approx(ct.stats().rel_rmse, rel=1e-6)
    # from a bytearray and a memoryview too
    assert hypercomp.CTensor.deserialize(bytearray(blob)).serialize() == blob
    assert hypercomp.CTensor.deserialize(memoryview(blob)).serialize() == blob


def test_hostile_serialised_bytes_raise_format_error():
    blob = hypercomp.Compressor("nf4").compress(matrix()).serialize()
    with pytest.raises(hypercomp.FormatError) as e:
        hypercomp.CTensor.deserialize(blob[:-3])
    assert e.value.status == -4 and e.value.status_name == "HC_EFORMAT"
    assert "bytes" in e.value.message
    flipped = bytearray(blob)
    flipped[len(blob) // 2] ^= 0x10
    with pytest.raises(hypercomp.FormatError):
        hypercomp.CTensor.deserialize(bytes(flipped))
    with pytest.raises(hypercomp.FormatError):
        hypercomp.CTensor.deserialize(b"")


def test_bad_spec_names_the_bad_part():
    with pytest.raises(hypercomp.NotFound) as e:
        hypercomp.Compressor("nf9")
    assert "nf9" in e.value.message and e.value.status_name == "HC_ENOTFOUND"
    with pytest.raises(hypercomp.Error) as e:
        hypercomp.Compressor("int8:clip=banana")
    assert "banana" in str(e.value)
    assert isinstance(e.value, hypercomp.InvalidArgument)


def test_bad_inputs_raise_with_messages():
    c = hypercomp.Compressor("nf4")
    with pytest.raises(hypercomp.InvalidArgument, match="float64"):
        c.compress(np.zeros((4, 64)))
    with pytest.raises(hypercomp.InvalidArgument, match="needs"):
        c.compress(np.zeros((4, 64), dtype=np.float32), shape=(4, 65))
    with pytest.raises(hypercomp.Error) as e:
        c.compress(np.full((4, 64), np.nan, dtype=np.float32), name="bad")
    assert e.value.status_name == "HC_EINVAL" and "bad" in e.value.message


def test_contiguous_arrays_are_not_copied():
    from hypercomp import _Input
    w = gauss(8, (16, 64))
    inp = _Input(w)
    assert inp.view.data == w.ctypes.data           # the library reads the caller's memory
    f = np.asfortranarray(w)
    assert _Input(f).view.data != f.ctypes.data     # only a non-contiguous array is copied
    buf = bytearray(w.tobytes())
    inp = _Input(buf, shape=w.shape, dtype="f32")
    import ctypes
    assert inp.view.data == ctypes.addressof((ctypes.c_char * len(buf)).from_buffer(buf))
    inp.release()
    buf.append(0)                                   # the export was released


def test_bf16_bits_in_and_out():
    w = gauss(9, (8, 64))
    bits = (w.view(np.uint32) >> 16).astype(np.uint16)   # truncation: exact bf16 values
    ct = hypercomp.Compressor("bf16").compress(bits, dtype="bf16")
    assert ct.orig_dtype == hypercomp.DTYPE_BF16
    np.testing.assert_array_equal(ct.decode("bf16"), bits)
    with pytest.raises(hypercomp.InvalidArgument, match="f64"):
        ct.decode("f64")
