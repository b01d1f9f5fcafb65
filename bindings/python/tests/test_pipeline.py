"""The pipeline from Python: stage callbacks, evaluators, cancellation and exceptions in callbacks."""
import numpy as np
import pytest

import hypercomp
from conftest import gauss


def escalate():
    # escalate goes to ever smaller codings while they pass and keeps the last that passed
    p = hypercomp.Pipeline(mode="escalate")
    p.add_stage("fine", "fp16", gate="rel_rmse<=1e-3")    # passes
    p.add_stage("coarse", "nf4", gate="rel_rmse<=1e-4")   # fails on Gaussian data
    return p


def test_stage_callback_sees_every_stage():
    w = gauss(10, (32, 64))
    p = escalate()
    assert p.stage_count == 2
    seen = []
    p.set_callback(lambda m: seen.append(m))
    ct = p.compress(w, name="w")
    assert ct.codec_name == "fp16"
    assert all(isinstance(m, hypercomp.StageMetrics) for m in seen)
    assert {m.tensor for m in seen} == {"w"}
    coarse = [m for m in seen if m.stage == "coarse"]
    fine = [m for m in seen if m.stage == "fine" and m.action_name != "chosen"]
    assert coarse and all(not m.gate_passed for m in coarse)
    assert fine[0].gate_passed and fine[0].spec.startswith("fp16")
    assert seen[-1].action_name == "chosen"
    assert seen[-1].rel_rmse == pytest.approx(ct.stats().rel_rmse, rel=1e-6)
    assert fine[0].n_values == w.size


def test_no_stage_passing_is_a_quality_error():
    p = hypercomp.Pipeline(mode="escalate")
    p.add_stage("coarse", "nf4", gate="rel_rmse<=1e-6")
    with pytest.raises(hypercomp.QualityError) as e:
        p.compress(gauss(11, (16, 64)), name="hard")
    assert "hard" in e.value.message


def test_bad_gate_text_raises():
    p = hypercomp.Pipeline()
    with pytest.raises(hypercomp.InvalidArgument) as e:
        p.add_stage("s", "nf4", gate="loudness>=3")
    assert "loudness" in e.value.message


def test_callback_returning_true_cancels():
    p = escalate()
    calls = []
    p.set_callback(lambda m: calls.append(m) or True)
    with pytest.raises(hypercomp.Cancelled) as e:
        p.compress(gauss(12, (16, 64)))
    assert e.value.status_name == "HC_ECANCELLED"
    assert len(calls) == 1


class Boom(Exception):
    pass


def test_exception_in_callback_cancels_and_is_reraised():
    p = escalate()
    calls = []

    def cb(m):
        calls.append(m)
        raise Boom("from the callback")
    p.set_callback(cb)
    with pytest.raises(Boom, match="from the callback"):
        p.compress(gauss(13, (16, 64)))
    assert len(calls) == 1          # the work stopped at the first report
    p.set_callback(None)            # and the pipeline is still usable afterwards
    assert p.compress(gauss(13, (16, 64))).codec_name == "fp16"


def test_callback_from_worker_threads():
    p = escalate()
    p2 = hypercomp.Pipeline(mode="escalate", threads=2)
    p2.add_stage("fine", "fp16", gate="rel_rmse<=1e-3")
    names = []
    p2.set_callback(lambda m: names.append(m.tensor))
    model = {f"t{i}": gauss(20 + i, (16, 64)) for i in range(4)}
    out = p2.compress_model(model)
    assert sorted(out) == sorted(model)
    assert set(names) == set(model)
    for name, w in model.items():
        assert out[name].measure(w).rel_rmse <= 1e-3
    del p


def model_of_two():
    return {"a": gauss(30, (16, 64)), "b": gauss(31, (16, 64))}


def test_evaluator_drives_the_model_gate():
    model = model_of_two()
    p = hypercomp.Pipeline(mode="escalate", model_retain=0.9, higher_is_better=True)
    p.add_stage("fp16", "fp16")
    p.add_stage("ternary", "ternary")
    calls = []

    views = []

    def score(m):
        assert isinstance(m, hypercomp.ModelView)
        assert sorted(m.names()) == ["a", "b"]
        views.append(m)
        err = sum(float(np.linalg.norm(m[k] - model[k]) / np.linalg.norm(model[k])) for k in model)
        calls.append(err)
        return 1.0 - err
    p.set_evaluator(score)
    actions = []
    p.set_callback(lambda s: actions.append((s.tensor, s.stage, s.action_name)))
    out = p.compress_model(model)
    assert calls[0] == 0.0                    # the baseline is the original model
    assert len(calls) > 1
    assert out["a"].codec_name == "fp16" and out["b"].codec_name == "fp16"
    assert ("a", "ternary", "rolled_back") in actions
    with pytest.raises(ValueError):           # a view kept past its call refuses to read
        views[0].names()


def test_exception_in_evaluator_is_reraised():
    p = hypercomp.Pipeline(mode="escalate")
    p.add_stage("fp16", "fp16")

    def score(m):
        raise ZeroDivisionError("no score")
    p.set_evaluator(score)
    with pytest.raises(ZeroDivisionError, match="no score"):
        p.compress_model(model_of_two())


def test_exception_in_python_sink_is_reraised():
    p = hypercomp.Pipeline(mode="escalate")
    p.add_stage("fp16", "fp16")
    got = []

    def sink(name, ct):
        got.append((name, ct.codec_name))
        raise Boom("sink")
    with pytest.raises(Boom):
        p.compress_model(model_of_two(), sink=sink)
    assert got == [("a", "fp16")]


def test_bad_mode_raises():
    with pytest.raises(hypercomp.InvalidArgument, match="sideways"):
        hypercomp.Pipeline(mode="sideways")


def test_exception_in_a_worker_thread_callback_is_reraised():
    p = hypercomp.Pipeline(mode="escalate", threads=2)
    p.add_stage("fine", "fp16")

    def cb(m):
        raise Boom(m.tensor)
    p.set_callback(cb)
    with pytest.raises(Boom):
        p.compress_model({f"t{i}": gauss(60 + i, (16, 64)) for i in range(4)})


def test_rules_keep_or_route_tensors_by_name():
    int8 = hypercomp.Pipeline(mode="escalate")
    int8.add_stage("int8", "int8", gate="rel_rmse<=0.05")
    p = escalate()
    p.add_rule("*.norm", keep_spec="f32")
    p.add_rule("head.*", use=int8)
    del int8                              # the rule keeps its pipeline alive
    tensors = {"a.norm": gauss(60, (8, 64)), "head.w": gauss(61, (16, 64)), "body.w": gauss(62, (16, 64))}
    out = p.compress_model(tensors)
    assert out["a.norm"].codec_name == "f32"
    np.testing.assert_array_equal(out["a.norm"].decode(), tensors["a.norm"])
    assert out["head.w"].codec_name == "int8"
    assert out["body.w"].codec_name == "fp16"
    with pytest.raises(hypercomp.InvalidArgument):
        p.add_rule("x*", keep_spec="f32", use=escalate())   # exactly one of the two
    with pytest.raises(hypercomp.InvalidArgument):
        p.add_rule("x*", use="int8")
