"""What a torch rank does on a GPU, checked where none exists: the step's reads from the device, the
precision each matmul runs in, and checkpoints read off device tensors. (Device selection by local
rank: test_devices.py.)

The step runs for real (a size-1 Horovod job in its own process, the loop's own hooks); a
TorchFunctionMode sees every torch call it makes. On a GPU each ``.tolist()``/``.item()``/``.cpu()``
waits for the device: the step must make one such read, the loss, stop request and gradient norm
together.
"""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file
from torch.utils._pytree import tree_map

from harness.families.gpt import FAMILY, init_state
from harness.storage.checkpoint import save_checkpoint
from models_torch.backend import build_model
from models_torch.layers import check_tokens
from models_torch.ops import export_state, import_state

SCRIPT = """
import json, sys, traceback
import torch
from torch.overrides import TorchFunctionMode
from harness import build_run_config, run
from harness.families.gpt import FAMILY
from harness.loop.trainer import Hook

# What makes the host wait for the device (on the CPU they are plain calls; on CUDA, syncs).
HOST_READS = {"item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__", "__index__"}
MATMULS = {"linear", "matmul", "bmm", "scaled_dot_product_attention"}
OWN_CODE = ("/harness/", "/models_torch/")


class Recorder(TorchFunctionMode):
    # Each read as "caller:function", the harness's own apart from the libraries' (torch, Horovod).
    def __init__(self):
        super().__init__()
        self.reads, self.library_reads, self.matmul_dtypes = [], set(), set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in HOST_READS:
            caller = traceback.extract_stack(limit=2)[0]
            own = any(part in caller.filename for part in OWN_CODE)
            (self.reads.append if own else self.library_reads.add)(f"{caller.name}:{name}")
        if name in MATMULS:
            self.matmul_dtypes.update(str(a.dtype) for a in args[:2] if isinstance(a, torch.Tensor))
        return func(*args, **(kwargs or {}))


class StepRecorder(Hook):
    # Runs last: the loop's own hooks (meter, reporter) are inside the recorded step too.
    def __init__(self):
        self.steps, self.mode = [], None

    def on_train_start(self, trainer, position):
        backend = trainer.backend
        self.scaler = {"enabled": backend.scaler.is_enabled(), "device": backend.scaler._device}
        self.parameter_dtypes = sorted({str(p.dtype) for p in backend.model.parameters()})

    def before_step(self, step):
        self.mode = Recorder()
        self.mode.__enter__()

    def after_step(self, report, position):
        self.mode.__exit__(None, None, None)
        mode = self.mode
        self.steps.append({"reads": mode.reads, "library_reads": sorted(mode.library_reads),
                           "matmul_dtypes": sorted(mode.matmul_dtypes)})


results = {}
for precision in sys.argv[2:]:
    recorder = StepRecorder()
    overrides = ["train.steps=4", "eval.every=0", "checkpoint.every=0", f"train.precision={precision}"]
    config = build_run_config(FAMILY, "tiny", overrides=overrides)
    run("torch", FAMILY, config, f"{sys.argv[1]}/{precision}", progress=False, tensorboard=False, hooks=[recorder])
    # The last step is followed by the run's final evaluation and checkpoint: not the hot path.
    results[precision] = {"steps": recorder.steps[:-1], "scaler": recorder.scaler,
                          "parameters": recorder.parameter_dtypes}
print(json.dumps(results))
"""
# On the CPU the model reads its token ids' range (two ints); off a device tensor it does not
# (test_the_model_reads_no_token_range_off_a_device_tensor).
HOST_TOKEN_CHECK = ["check_tokens:__int__", "check_tokens:__int__"]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> dict:
    """Three steps of the tiny model per precision (of four: the last ends with the final evaluation
    and checkpoint), each torch call recorded."""
    run_dir = tmp_path_factory.mktemp("runs")
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(run_dir), "fp32", "bf16", "fp16"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_a_torch_step_reads_from_the_device_once(recorded, precision):
    # The loss, any stop request and the gradient norm in one tolist(): nothing else waits for the device.
    for step in recorded[precision]["steps"]:
        assert step["reads"] == [*HOST_TOKEN_CHECK, "train_step:tolist"]
        assert step["library_reads"] == []  # torch's fused AdamW keeps its step counts on the device


def test_an_fp16_step_adds_only_the_loss_scalers_reads(recorded):
    # torch's GradScaler reads whether any gradient overflowed before it steps (a generator in its
    # _maybe_opt_step), and the scale for the report: its own design, as in DDP's fp16 recipe (bf16
    # needs neither).
    for step in recorded["fp16"]["steps"]:
        assert step["reads"] == [*HOST_TOKEN_CHECK, "train_step:tolist"]
        assert step["library_reads"] == sorted(["<genexpr>:item", "get_scale:item"])


def test_the_model_reads_no_token_range_off_a_device_tensor():
    from torch.overrides import TorchFunctionMode

    class Reads(TorchFunctionMode):
        def __init__(self):
            super().__init__()
            self.names = []

        def __torch_function__(self, func, types, args=(), kwargs=None):
            self.names.append(getattr(func, "__name__", ""))
            return func(*args, **(kwargs or {}))

    config = FAMILY.preset("tiny")
    tokens = torch.zeros((2, 8), dtype=torch.int64)
    with Reads() as on_host:
        check_tokens(config, tokens)
    with Reads() as on_device:
        check_tokens(config, OnDevice(tokens))
    assert on_host.names.count("__int__") == 2 and not {"__int__", "item", "tolist"} & set(on_device.names)
    with pytest.raises(ValueError, match="received ids in"):
        check_tokens(config, tokens + config.vocab_size)


@pytest.mark.parametrize(
    ("precision", "compute", "scaled"),
    [("fp32", "torch.float32", False), ("bf16", "torch.bfloat16", False), ("fp16", "torch.float16", True)],
)
def test_each_precision_runs_every_matmul_in_its_dtype_over_fp32_weights(recorded, precision, compute, scaled):
    run = recorded[precision]
    assert {dtype for step in run["steps"] for dtype in step["matmul_dtypes"]} == {compute}
    assert run["parameters"] == ["torch.float32"]  # master weights, moments and updates stay fp32
    # Loss scaling for fp16 only (bf16 has fp32's exponent range), made for the rank's device: "cuda"
    # on a GPU (models_torch/backend.py builds it from the device the rank selected).
    assert run["scaler"] == {"enabled": scaled, "device": "cpu"}


class OnDevice(torch.Tensor):
    """A tensor that reports ``cuda:0``, as a parameter moved to a GPU does, holding its values on the
    host (there is no GPU here). Like a CUDA tensor's, its ``.numpy()`` fails: only ``.cpu()`` reads it."""

    @staticmethod
    def __new__(cls, host: torch.Tensor):
        return torch.Tensor._make_wrapper_subclass(
            cls, host.shape, dtype=host.dtype, device=torch.device("cuda", 0), requires_grad=host.requires_grad
        )

    def __init__(self, host: torch.Tensor):
        self.host = host

    def numpy(self, *args, **kwargs):  # torch's own words for a CUDA tensor
        raise TypeError("can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu() to copy the tensor to host")

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*tree_map(unwrap, args), **tree_map(unwrap, kwargs))
        if func is torch.ops.aten._to_copy.default and kwargs.get("device") == torch.device("cpu"):
            return out  # .cpu(): a plain host tensor
        return tree_map(lambda x: OnDevice(x) if isinstance(x, torch.Tensor) else x, out)


def unwrap(value):
    return value.host if isinstance(value, OnDevice) else value


def test_a_checkpoint_is_read_off_device_tensors_as_off_host_ones(tmp_path):
    config = FAMILY.preset("tiny")
    model = build_model(FAMILY, config)
    import_state(model, init_state(config, seed=0))
    on_host = export_state(model)
    for module in model.modules():  # as model.to("cuda") leaves them
        for name, param in module.named_parameters(recurse=False):
            module._parameters[name] = torch.nn.Parameter(OnDevice(param.detach()))
    assert {p.device for p in model.parameters()} == {torch.device("cuda", 0)}
    with pytest.raises(TypeError, match="can't convert cuda:0"):
        next(model.parameters()).numpy()  # what a checkpoint writer that forgot .cpu() would meet
    on_device = export_state(model)
    saved = [
        save_checkpoint(tmp_path / name, 1, state, {}, {"framework": "torch"}, keep=1)
        for name, state in (("host", on_host), ("device", on_device))
    ]
    host, device = (load_file(path / "model.safetensors") for path in saved)
    assert host.keys() == device.keys() and all(np.array_equal(host[n], device[n]) for n in host)
    assert all(device[n].dtype == np.float32 for n in device)
