"""PyTorch backend: the twin model, AdamW, and Horovod's DistributedOptimizer."""

from __future__ import annotations

import numpy as np
import torch

from harness.backend import Backend, StepResult
from harness.config import ModelConfig, RunConfig
from harness.distributed import Distributed
from harness.state import State, init_state, optimizer_state_names, weight_decay_names
from models_torch.model import TransformerLM, loss_fn

COMPUTE_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def build_model(config: ModelConfig, state: State, precision: str = "fp32") -> TransformerLM:
    model = TransformerLM(config, compute_dtype=COMPUTE_DTYPES[precision])
    model.import_state(state)
    return model


class TorchBackend(Backend):
    def __init__(self, config: RunConfig, dist: Distributed, init_seed: int):
        super().__init__(config, dist)
        hvd = dist.hvd
        torch.use_deterministic_algorithms(config.train.deterministic)
        self.device = dist.device  # this rank's GPU, or the CPU
        t = config.train
        self.model = build_model(config.model, init_state(config.model, init_seed), t.precision).to(self.device)
        self.named = dict(self.model.named_parameters())
        decay = weight_decay_names(config.model)
        adamw = torch.optim.AdamW(
            [
                {"params": [p for n, p in self.named.items() if n in decay], "weight_decay": t.weight_decay},
                {"params": [p for n, p in self.named.items() if n not in decay], "weight_decay": 0.0},
            ],
            lr=t.lr,
            betas=(t.beta1, t.beta2),
            eps=t.eps,
            foreach=False,  # the single-tensor kernel: the exact arithmetic the TF twin mirrors
        )
        # Horovod: average gradients over ranks with allreduce, started from backward hooks once
        # every accumulation_steps backward passes; fp16 on the wire if asked.
        self.optimizer = hvd.DistributedOptimizer(
            adamw,
            named_parameters=self.model.named_parameters(),
            compression=hvd.Compression.fp16 if t.compression == "fp16" else hvd.Compression.none,
            backward_passes_per_step=t.accumulation_steps,
        )
        self.import_optimizer_state(self._zero_optimizer_state())
        # fp16 gradients underflow without loss scaling; disabled, the scaler passes everything through.
        self.scaler = torch.amp.GradScaler(
            self.device.type, init_scale=t.initial_loss_scale, enabled=t.precision == "fp16"
        )

    def _zero_optimizer_state(self) -> State:
        # Materialise AdamW's moments up front, so they exist to broadcast before step 0 (otherwise
        # Horovod would create them by running one spurious zero-gradient step).
        state = {"step": np.zeros(1, np.int64)}
        for name, p in self.named.items():
            state[f"exp_avg.{name}"] = np.zeros(p.shape, np.float32)
            state[f"exp_avg_sq.{name}"] = np.zeros(p.shape, np.float32)
        return state

    def export_model_state(self) -> State:
        return self.model.export_state()

    def import_model_state(self, state: State) -> None:
        self.model.import_state(state)

    def export_optimizer_state(self) -> State:
        state = {}
        for name, p in self.named.items():
            slots = self.optimizer.state[p]
            state["step"] = np.array([int(slots["step"])], np.int64)
            state[f"exp_avg.{name}"] = slots["exp_avg"].cpu().numpy().copy()
            state[f"exp_avg_sq.{name}"] = slots["exp_avg_sq"].cpu().numpy().copy()
        return {name: state[name] for name in optimizer_state_names(self.config.model)}

    def import_optimizer_state(self, state: State) -> None:
        # Horovod: load_state_dict also drops pending allreduce handles and accumulation counts,
        # which an elastic rollback may interrupt halfway.
        self.optimizer.load_state_dict(self.optimizer.state_dict())
        step = float(state["step"][0])
        for name, p in self.named.items():
            self.optimizer.state[p] = {
                "step": torch.tensor(step),
                "exp_avg": torch.from_numpy(state[f"exp_avg.{name}"].copy()).to(self.device),
                "exp_avg_sq": torch.from_numpy(state[f"exp_avg_sq.{name}"].copy()).to(self.device),
            }

    def broadcast_initial_state(self) -> None:
        hvd = self.dist.hvd
        # Horovod: rank 0's weights and AdamW state become every rank's.
        hvd.broadcast_parameters(self.model.state_dict(), root_rank=0)
        hvd.broadcast_optimizer_state(self.optimizer, root_rank=0)

    def seed_step(self, seed: int) -> None:
        torch.manual_seed(seed)

    def train_step(self, inputs: np.ndarray, targets: np.ndarray, lr: float) -> StepResult:
        hvd = self.dist.hvd
        self.model.train()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad()
        loss = torch.zeros((), device=self.device)
        for micro_inputs, micro_targets in zip(inputs, targets, strict=True):  # (B, T) each
            micro_loss = loss_fn(self.model(self._on_device(micro_inputs)), self._on_device(micro_targets))
            self.scaler.scale(micro_loss / len(inputs)).backward()  # gradients accumulate in .grad
            loss += micro_loss.detach() / len(inputs)
        # Horovod: average the loss over ranks in the same cycle as the gradients (no extra round trip).
        mean_loss = hvd.allreduce_async(loss, op=hvd.Average, name="train_loss")
        # Horovod: wait for the reduced gradients, so clipping and the finiteness check see what
        # every rank applies.
        self.optimizer.synchronize()
        self.scaler.unscale_(self.optimizer)
        clip = self.config.train.grad_clip or float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip).item()
        mean_loss = hvd.synchronize(mean_loss).item()
        applied = bool(np.isfinite(mean_loss) and np.isfinite(grad_norm))
        if applied:
            # Horovod: the gradients are already reduced; step without a second allreduce.
            with self.optimizer.skip_synchronize():
                self.scaler.step(self.optimizer)
        self.scaler.update()
        return StepResult(mean_loss, grad_norm, applied, self.scaler.get_scale() if self.scaler.is_enabled() else 1.0)

    def eval_loss(self, inputs: np.ndarray, targets: np.ndarray) -> float:
        self.model.eval()
        with torch.no_grad():
            return loss_fn(self.model(self._on_device(inputs)), self._on_device(targets)).item()

    def _on_device(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(array).to(self.device, non_blocking=True)


def make_backend(config: RunConfig, dist: Distributed, init_seed: int) -> TorchBackend:
    return TorchBackend(config, dist, init_seed)


def make_predictor(config: ModelConfig, state: State):
    """Tokens (B, T) int64 -> logits (B, T, V) float32, for sampling; no Horovod."""
    model = build_model(config, state)
    model.eval()

    def predict(tokens: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(tokens)).numpy()

    return predict
