"""PyTorch backend: a family's torch model, AdamW, and Horovod's DistributedOptimizer."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch

from harness.contract.backend import (
    Backend,
    EvalSums,
    StepResult,
    bind,
    gradient_buckets,
    loss_shares,
    step_outcome,
)
from harness.contract.config import RunConfig, TrainConfig
from harness.contract.distributed import Distributed
from harness.contract.family import Family
from harness.contract.state import State, zero_optimizer_state
from harness.contract.task import Batch, Inputs, map_inputs
from models_torch.ops import call, cross_entropy, eval_sums, import_state, read, relayout, write

COMPUTE_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def build_model(family: Family, config: Any, precision: str = "fp32") -> torch.nn.Module:
    """The family's torch model computing in ``precision``; its weights are for the caller to set."""
    return family.implementation("torch")(config, compute_dtype=COMPUTE_DTYPES[precision])


def check_parameter_map(family: Family, config: Any) -> None:
    """Build the family's torch model and bind its parameters to the neutral state, as a backend does:
    ``ValueError`` naming what does not fit."""
    model = build_model(family, config)
    bind(family, "torch", {n: tuple(p.shape) for n, p in model.named_parameters()}, family.state_shapes(config))


def make_adamw(parameters: dict[str, torch.nn.Parameter], decay: set[str], train: TrainConfig) -> torch.optim.AdamW:
    """AdamW over ``parameters``, decaying the weights named in ``decay`` only."""
    return torch.optim.AdamW(
        [
            {"params": [p for n, p in parameters.items() if n in decay], "weight_decay": train.weight_decay},
            {"params": [p for n, p in parameters.items() if n not in decay], "weight_decay": 0.0},
        ],
        lr=train.lr,
        betas=(train.beta1, train.beta2),
        eps=train.eps,
        # torch's one-pass kernel: 1/6 of the single-tensor kernel's time (benchmarks/adamw_kernels.py),
        # and as close to the TF twin's arithmetic (tests/unit/test_adamw_twins.py: 10.5 ulps at worst, 9.5).
        fused=True,
    )


def clip_gradients(parameters: dict[str, torch.nn.Parameter], train: TrainConfig) -> torch.Tensor:
    """Scale the gradients in place to a global norm of at most ``train.grad_clip`` (0: no clipping);
    returns their global norm before, on the gradients' device (no host synchronisation)."""
    return torch.nn.utils.clip_grad_norm_(parameters.values(), train.grad_clip or float("inf"))


class TorchBackend(Backend):
    def __init__(self, family: Family, config: RunConfig, dist: Distributed, init_seed: int):
        super().__init__(family, config, dist)
        hvd = dist.hvd
        t = config.train
        torch.use_deterministic_algorithms(t.deterministic)
        self.device = dist.device  # this rank's GPU, or the CPU
        self.model = build_model(family, config.model, t.precision).to(self.device)
        self.own_loss = family.loss("torch")  # the family's, or None: cross-entropy
        own = dict(self.model.named_parameters())
        self.bind_parameters("torch", own, lambda p: tuple(p.shape))
        for name in family.parameter_map("torch").fixed:  # no part of the state: never trained
            own[name].requires_grad_(False)
        self.import_model_state(family.init_state(config.model, init_seed))
        adamw = make_adamw(self.parameters, family.decayed(config.model), t)
        trained = [(p, p.numel() * 4) for p in self.parameters.values() if p.requires_grad]  # fp32 gradients
        # Horovod: average gradients over ranks with allreduce, started from backward hooks once
        # every accumulation_steps backward passes: one grouped allreduce per bucket of
        # train.gradient_bucket_mb, issued as soon as the backward pass has filled it; fp16 on the wire if asked.
        self.optimizer = hvd.DistributedOptimizer(
            adamw,
            named_parameters=self.model.named_parameters(),
            compression=dist.compression(t.compression),
            backward_passes_per_step=t.accumulation_steps,
            groups=gradient_buckets(trained, t.gradient_bucket_mb),
        )
        # Horovod: tied copies are outside the optimizer; a hook of their own starts each copy's
        # allreduce as soon as the last backward pass has filled its gradient, as the optimizer's do.
        # (Registered at any size: an elastic job started alone may grow.)
        self.copy_reductions: dict[int, Any] | None = None  # copy index -> handle, during the last pass
        for i, (param, _, _) in enumerate(self.copies):
            param.register_post_accumulate_grad_hook(functools.partial(self._reduce_copy, i))
        # Materialise AdamW's moments up front, so they exist to broadcast before step 0 (otherwise
        # Horovod would create them by running one spurious zero-gradient step).
        self.import_optimizer_state(zero_optimizer_state(self.shapes))
        # fp16 gradients underflow without loss scaling; disabled, the scaler passes everything through.
        self.scaler = torch.amp.GradScaler(
            self.device.type, init_scale=t.initial_loss_scale, enabled=t.precision == "fp16"
        )

    def _reduce_copy(self, i: int, param: torch.nn.Parameter) -> None:
        if self.copy_reductions is not None:  # earlier micro-batches, and a rank alone, only accumulate
            hvd = self.dist.hvd
            self.copy_reductions[i] = hvd.allreduce_async(param.grad, op=hvd.Average, name=f"tied.{i}")

    def _read(self, param: torch.nn.Parameter) -> np.ndarray:
        return read(param)

    def _write(self, param: torch.nn.Parameter, value: np.ndarray) -> None:
        write(param, value)

    def _read_optimizer(self) -> tuple[int, dict[str, tuple[np.ndarray, np.ndarray]]]:
        slots = {name: self.optimizer.state[p] for name, p in self.parameters.items()}
        step = int(next(iter(slots.values()))["step"])
        return step, {name: (self._read(s["exp_avg"]), self._read(s["exp_avg_sq"])) for name, s in slots.items()}

    def _write_optimizer(self, step: int, moments: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        # Horovod: load_state_dict also drops pending allreduce handles and accumulation counts,
        # which an elastic rollback may interrupt halfway.
        self.optimizer.load_state_dict(self.optimizer.state_dict())
        for name, p in self.parameters.items():
            exp_avg, exp_avg_sq = moments[name]
            self.optimizer.state[p] = {
                "step": torch.tensor(float(step)),
                "exp_avg": torch.from_numpy(exp_avg.copy()).to(self.device),
                "exp_avg_sq": torch.from_numpy(exp_avg_sq.copy()).to(self.device),
            }

    def broadcast_initial_state(self) -> None:
        hvd = self.dist.hvd
        # Horovod: rank 0's weights and AdamW state become every rank's.
        hvd.broadcast_parameters(self.model.state_dict(), root_rank=0)
        hvd.broadcast_optimizer_state(self.optimizer, root_rank=0)

    def seed_step(self, seed: int) -> None:
        torch.manual_seed(seed)

    def train_step(self, batch: Batch, lr: float, stop_requested: bool = False) -> StepResult:
        hvd, t = self.dist.hvd, self.config.train
        self.model.train()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad()
        for param, _, _ in self.copies:  # outside the optimizer: zero_grad leaves them
            param.grad = None
        self.copy_reductions = None  # the hooks off until the last pass (also after a step cut short)
        loss, alone, shares = torch.zeros((), device=self.device), self.dist.size == 1, loss_shares(batch)
        for i, share in enumerate(shares):  # one micro-batch each
            micro = batch.micro_batch(i)
            logits = self._logits(micro.inputs)
            targets, micro_weights = self._on_device(micro.targets), self._on_device(micro.weights)
            micro_loss = (self.own_loss or cross_entropy)(logits, targets, micro_weights, t.label_smoothing)
            loss += micro_loss.detach() * float(share)
            if i == len(shares) - 1:
                # Horovod: average the loss, and any rank's stop request, over ranks while the last
                # backward pass runs: done before the gradients' allreduce, not a round trip after it.
                # Alone, a rank skips Horovod's cycle: its values are the means.
                loss_and_stop = torch.stack([loss, torch.tensor(float(stop_requested), device=self.device)])
                reducing = None if alone else hvd.allreduce_async(loss_and_stop, op=hvd.Average, name="train_loss")
                self.copy_reductions = None if alone else {}  # the copies' hooks reduce during this pass
            self.scaler.scale(micro_loss * float(share)).backward()  # gradients accumulate in .grad
        copied = self.copy_reductions
        # Horovod: wait for the reduced gradients, so clipping and the finiteness check see what
        # every rank applies.
        self.optimizer.synchronize()
        for i, (param, name, layout) in enumerate(self.copies):  # a copy's gradient is its tensor's too
            reduced = param.grad if alone else hvd.synchronize(copied[i])
            self.parameters[name].grad += relayout(reduced, layout, self.layouts[name])
        self.scaler.unscale_(self.optimizer)
        grad_norm = clip_gradients(self.parameters, t)
        reduced = loss_and_stop if reducing is None else hvd.synchronize(reducing)
        # The step's one device-to-host read: the loss, any stop request and the norm together.
        mean_loss, stop, grad_norm = torch.cat([reduced, grad_norm.reshape(1)]).tolist()
        applied = bool(np.isfinite(mean_loss) and np.isfinite(grad_norm))
        if applied:
            # Horovod: the gradients are already reduced; step without a second allreduce.
            with self.optimizer.skip_synchronize():
                self.scaler.step(self.optimizer)
            with torch.no_grad():
                for param, name, layout in self.copies:  # a tied copy takes its tensor's update
                    param.copy_(relayout(self.parameters[name], self.layouts[name], layout))
        self.scaler.update()
        scale = self.scaler.get_scale() if self.scaler.is_enabled() else 1.0
        outcome = step_outcome(applied, mean_loss, self.scaler.is_enabled())
        return StepResult(mean_loss, grad_norm, outcome, scale, stop > 0)

    def eval_sums(self, batch: Batch) -> EvalSums:
        self.model.eval()
        with torch.no_grad():
            logits = self._logits(batch.inputs)
            targets, weights = self._on_device(batch.targets), self._on_device(batch.weights)
            return EvalSums(*eval_sums(logits, targets, weights, self.own_loss))

    def _logits(self, inputs: Inputs) -> torch.Tensor:
        return self.family.logits_of(call(self.model, map_inputs(self._on_device, inputs)))

    def _on_device(self, array: np.ndarray | None) -> torch.Tensor | None:
        return None if array is None else torch.from_numpy(array).to(self.device, non_blocking=True)

    def predict(self, inputs: Inputs) -> np.ndarray:
        self.model.eval()  # train_step turns training mode back on
        with torch.no_grad():
            return self.family.logits_of(call(self.model, map_inputs(torch.from_numpy, inputs))).float().cpu().numpy()


def make_backend(family: Family, config: RunConfig, dist: Distributed, init_seed: int) -> TorchBackend:
    return TorchBackend(family, config, dist, init_seed)


def make_predictor(family: Family, config: Any, state: State):
    """A batch's inputs (B, ...) -> logits, float32 numpy, for sampling; no Horovod."""
    model = build_model(family, config)
    import_state(model, state, family.parameter_map("torch"))
    model.eval()

    def predict(inputs: Inputs) -> np.ndarray:
        with torch.no_grad():
            return family.logits_of(call(model, map_inputs(torch.from_numpy, inputs))).float().numpy()

    return predict
