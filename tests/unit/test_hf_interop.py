"""Hugging Face interop (harness/families/gpt/hf.py, `harness export`, --init-from DIR): the twins and
transformers' GPT2LMHeadModel compute the same logits from the same weights, both ways, tied and
untied; no hub access (every model here is made by the test)."""

import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf
import torch
from click.testing import CliRunner
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from harness.contract.state import zero_optimizer_state
from harness.data.inputs import default_corpus
from harness.data.tokenizer import ByteTokenizer, load_tokenizer
from harness.families.gpt import FAMILY, GPTConfig, init_state, state_shapes
from harness.families.gpt.hf import read_hf
from harness.runner.config import load_run_config
from harness.runner.resume import initial_state_from
from harness.storage.checkpoint import save_checkpoint, tokenizer_record
from harness.testing.twins import family_twins
from launch.cli import cli

# vocab_size: the bpe_file fixture's (tests/conftest.py).
CONFIGS = {
    "tied": GPTConfig(vocab_size=512, n_layer=2, n_head=4, n_embd=32, mlp_hidden=80, block_size=24),
    "untied": GPTConfig(
        vocab_size=512, n_layer=3, n_head=3, n_embd=21, mlp_hidden=37, block_size=16, tie_embeddings=False
    ),
}


def twin_logits(config: GPTConfig, state, tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pt, tfm = family_twins(FAMILY, config, state=state)
    with torch.no_grad():
        return pt(torch.from_numpy(tokens)).numpy(), tfm(tf.constant(tokens)).numpy()


def hf_logits(model: GPT2LMHeadModel, tokens: np.ndarray) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        return model(torch.from_numpy(tokens)).logits.numpy()


def random_tokens(config: GPTConfig, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, config.vocab_size, (3, config.block_size))


@pytest.mark.parametrize("name", CONFIGS)
def test_an_exported_run_loads_in_transformers_with_the_twins_logits(name, tmp_path, bpe_file):
    config = CONFIGS[name]
    # Random, not GPT-2-initialised, weights: every tensor matters, biases and norms included.
    rng = np.random.default_rng(1)
    state = {k: rng.normal(0, 0.2, v.shape).astype(np.float32) for k, v in init_state(config, 0).items()}
    tokenizer = load_tokenizer(str(bpe_file))
    record = {
        "family": "gpt",
        "config": {"model": dataclasses.asdict(config)},
        "tokenizer": tokenizer_record(tokenizer),
    }
    save_checkpoint(tmp_path / "run", 7, state, zero_optimizer_state(state_shapes(config)), record, keep=1,
                    files={"tokenizer.json": bpe_file})  # fmt: skip
    result = CliRunner().invoke(cli, ["export", "--run-dir", str(tmp_path / "run"), "--out", str(tmp_path / "hf")])
    assert result.exit_code == 0, result.output
    model = GPT2LMHeadModel.from_pretrained(tmp_path / "hf")
    assert (model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()) == config.tie_embeddings
    tokens = random_tokens(config)
    theirs = hf_logits(model, tokens)
    for ours in twin_logits(config, state, tokens):
        assert np.abs(ours - theirs).max() <= 1e-5, np.abs(ours - theirs).max()
    fast = PreTrainedTokenizerFast(tokenizer_file=str(tmp_path / "hf" / "tokenizer.json"))
    text = default_corpus()[:500]
    assert fast(text)["input_ids"] == tokenizer.encode(text).tolist()


@pytest.mark.parametrize("name", CONFIGS)
def test_a_transformers_gpt2_initialises_both_twins_with_its_logits(name, tmp_path, bpe_file):
    config = CONFIGS[name]
    hf_config = GPT2Config(
        vocab_size=config.vocab_size, n_positions=config.block_size, n_embd=config.n_embd, n_layer=config.n_layer,
        n_head=config.n_head, n_inner=config.mlp_hidden, activation_function="gelu",
        tie_word_embeddings=config.tie_embeddings, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
    )  # fmt: skip
    torch.manual_seed(0)
    model = GPT2LMHeadModel(hf_config)
    with torch.no_grad():  # random layer norms and biases too, not just GPT-2's init
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.1)
    model.save_pretrained(tmp_path / "hf")
    imported_config, state = read_hf(tmp_path / "hf")
    assert imported_config == config
    tokens = random_tokens(config)
    theirs = hf_logits(model, tokens)
    for ours in twin_logits(config, state, tokens):
        assert np.abs(ours - theirs).max() <= 1e-5, np.abs(ours - theirs).max()
    # --init-from DIR: the run's model config and tokenizer are the directory's; every tensor comes from it.
    (tmp_path / "hf" / "tokenizer.json").write_bytes(bpe_file.read_bytes())
    chosen, run_config = load_run_config("tiny", overrides=[f"train.init_from={tmp_path / 'hf'}"])
    assert run_config.model == config and run_config.data.tokenizer == str(tmp_path / "hf" / "tokenizer.json")
    fresh = init_state(config, 5)
    tokenizer = load_tokenizer(run_config.data.tokenizer)
    started, origin, left_fresh = initial_state_from(tmp_path / "hf", chosen, fresh, tokenizer)
    assert left_fresh == [] and "Hugging Face" in origin
    assert all(np.array_equal(started[k], state[k]) for k in state)
    with pytest.raises(ValueError, match="is not this run's tokenizer"):
        initial_state_from(tmp_path / "hf", chosen, fresh, ByteTokenizer())


def test_a_gpt2_the_twins_cannot_be_is_refused_in_one_line(tmp_path):
    GPT2LMHeadModel(GPT2Config(n_layer=1, n_head=2, n_embd=8, n_positions=8, vocab_size=256)).save_pretrained(
        tmp_path / "hf"
    )  # GPT-2's default activation: the tanh approximation
    result = CliRunner().invoke(
        cli,
        ["train", "--framework", "torch", "--steps", "1", "--run-dir", str(tmp_path / "run"),
         "--init-from", str(tmp_path / "hf")],
    )  # fmt: skip
    assert result.exit_code == 1 and "activation_function is 'gelu_new'" in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "run").exists()
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    with pytest.raises(ValueError, match="model.n_layer is 4"):
        config["activation_function"] = "gelu"
        (tmp_path / "hf" / "config.json").write_text(json.dumps(config))
        load_run_config("tiny", overrides=[f"train.init_from={tmp_path / 'hf'}", "model.n_layer=4"])


def test_sinusoidal_positions_cannot_be_exported(tmp_path):
    config = dataclasses.replace(FAMILY.preset("tiny"), pos_encoding="sinusoidal")
    record = {"family": "gpt", "config": {"model": dataclasses.asdict(config)}}
    state = init_state(config, 0)
    save_checkpoint(tmp_path / "run", 1, state, zero_optimizer_state(state_shapes(config)), record, keep=1)
    result = CliRunner().invoke(cli, ["export", "--run-dir", str(tmp_path / "run"), "--out", str(tmp_path / "hf")])
    assert result.exit_code == 1 and "GPT-2 learns its positions" in result.output, result.output
    assert not (tmp_path / "hf").exists()
