"""The trainers' shared loop: precision choice, bfloat16 autocast against a float32 run, the
compiled step against the eager one."""

import sys

import pytest
import torch
from torch import nn

from edgepose.errors import InputError
from export.training.common import native_bf16, resolve_compile, resolve_precision, run_steps


def _regression(seed: int = 0):
    """A small conv net and a fixed batch it can fit, the same for every call."""
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(8, 3, 12, 12, generator=generator)
    targets = torch.randn(8, 4, 12, 12, generator=generator) * 0.1
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(),
                          nn.Conv2d(16, 4, 3, padding=1))
    return model, [(inputs, targets)]


def _train(precision: str, steps: int = 30, seen_dtypes: list | None = None,
           compile_step: bool = False):
    """The trained model and the loss of every step."""
    model, loader = _regression()
    losses = []

    def loss_of_batch(batch):
        output = model(batch[0])
        if seen_dtypes is not None:
            seen_dtypes.append(output.dtype)
        loss = ((output - batch[1]) ** 2).mean()
        if not compile_step:  # .item() would split the compiled graph
            losses.append(loss.item())
        return loss

    run_steps(model, loader, loss_of_batch, steps=steps, learning_rate=1e-2,
              weight_decay=0.0, description="test", precision=precision,
              compile_step=compile_step)
    return model, losses


def test_auto_means_bf16_exactly_where_the_cpu_runs_it_natively():
    assert resolve_precision("auto") == ("bf16" if native_bf16() else "fp32")
    assert resolve_precision("fp32") == "fp32"
    assert resolve_precision("bf16") == "bf16"


@pytest.mark.parametrize("bad", ["fp16", "BF16", "", None])
def test_an_unknown_precision_is_refused(bad):
    with pytest.raises(InputError, match="precision"):
        resolve_precision(bad)


def test_run_steps_wants_a_resolved_precision():
    model, loader = _regression()
    with pytest.raises(InputError, match="resolve 'auto'"):
        run_steps(model, loader, lambda batch: model(batch[0]).mean(), steps=1,
                  learning_rate=1e-3, weight_decay=0.0, description="test", precision="auto")


def test_bf16_forward_runs_in_bfloat16_and_fp32_in_float32():
    seen: list = []
    _train("bf16", steps=2, seen_dtypes=seen)
    assert seen == [torch.bfloat16] * 2
    seen.clear()
    _train("fp32", steps=2, seen_dtypes=seen)
    assert seen == [torch.float32] * 2


def test_bf16_training_follows_the_float32_run():
    """Same init, same data: bfloat16 activations change the losses by rounding only, and
    the float32 master weights end close to the float32 run's."""
    fp32_model, fp32_losses = _train("fp32")
    bf16_model, bf16_losses = _train("bf16")
    assert fp32_losses[-1] < 0.5 * fp32_losses[0]  # the reference actually learned
    assert bf16_losses[-1] == pytest.approx(fp32_losses[-1], rel=0.1)
    for (name, a), b in zip(fp32_model.state_dict().items(), bf16_model.state_dict().values()):
        assert b.dtype == torch.float32, name
        assert torch.linalg.vector_norm(a - b) <= 0.05 * torch.linalg.vector_norm(a), name


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_the_model_comes_back_in_the_default_layout_and_eval_mode(precision):
    model, _ = _train(precision, steps=1)
    assert not model.training
    assert all(p.is_contiguous() for p in model.parameters())


def test_auto_compiles_exactly_where_a_cxx_compiler_is_found(monkeypatch):
    monkeypatch.setenv("CXX", "no-such-compiler-edgepose")
    assert resolve_compile("auto") is False
    monkeypatch.setenv("CXX", sys.executable)  # any executable on the PATH stands in
    assert resolve_compile("auto") is True
    assert resolve_compile("on") is True
    assert resolve_compile("off") is False


@pytest.mark.parametrize("bad", ["yes", "ON", "", None, True])
def test_an_unknown_compile_mode_is_refused(bad):
    with pytest.raises(InputError, match="compile"):
        resolve_compile(bad)


@pytest.mark.skipif(not resolve_compile("auto"), reason="torch.compile's CPU backend needs a "
                                                          "C++ compiler, and none is on the PATH")
def test_a_compiled_step_trains_like_the_eager_one():
    """torch.compile's fused kernels and the fused AdamW that comes with them reorder float32
    arithmetic, nothing more: 30 steps end at the eager run's weights up to rounding, and
    the step was really compiled."""
    torch._dynamo.reset()
    eager_model, _ = _train("fp32")
    torch._dynamo.utils.counters.clear()
    compiled_model, _ = _train("fp32", compile_step=True)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1
    for (name, a), b in zip(eager_model.state_dict().items(),
                            compiled_model.state_dict().values()):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-4), name
    assert not compiled_model.training


def test_a_failed_compilation_names_the_way_out(monkeypatch):
    def failing_compile(function):
        def run(batch):
            raise torch._dynamo.exc.BackendCompilerFailed(
                failing_compile, RuntimeError("C++ compile error\nmore detail"), None)
        return run

    monkeypatch.setattr(torch, "compile", failing_compile)
    model, loader = _regression()
    with pytest.raises(InputError, match=r"RuntimeError: C\+\+ compile error\); train with "
                                         r"--compile off"):
        run_steps(model, loader, lambda batch: model(batch[0]).mean(), steps=1,
                  learning_rate=1e-3, weight_decay=0.0, description="test", compile_step=True)
