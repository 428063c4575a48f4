"""The BERT-style twins compute the same function from the same weights (fp32, CPU), padding never
reaches a real position, and the masked-LM batches follow BERT's recipe."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
import torch

from harness.data.corpus import train_val_split
from harness.data.tokenizer import ByteTokenizer
from harness.families.bert import CLS_ID, FAMILY, MASK_ID, PAD_ID, BERTConfig, MaskedLMTask, init_state, state_shapes
from harness.testing.bert import CLASSIFY, CONFIGS, TEXT, labelled_batch, masked_batch
from harness.testing.twins import LOGITS_ATOL, LOSS_RTOL, assert_gradients_agree, family_twins
from models_tf import ops as tf_ops
from models_torch import ops as torch_ops


@pytest.mark.parametrize("name", CONFIGS)
def test_same_weights_give_same_logits_and_loss(name):
    config = CONFIGS[name]
    pt, tfm = family_twins(FAMILY, config)
    x, y, w = masked_batch(config)
    with torch.no_grad():
        pt_logits = pt(torch.from_numpy(x))
        pt_loss = torch_ops.cross_entropy(pt_logits, torch.from_numpy(y), torch.from_numpy(w)).item()
    tf_logits = tfm(tf.constant(x), training=False)
    tf_loss = float(tf_ops.cross_entropy(tf_logits, tf.constant(y), tf.constant(w)))
    assert pt_logits.shape == tuple(tf_logits.shape) == (4, config.block_size, config.vocab_size)
    assert np.max(np.abs(pt_logits.numpy() - tf_logits.numpy())) <= LOGITS_ATOL
    assert abs(pt_loss - tf_loss) / abs(pt_loss) <= LOSS_RTOL
    assert abs(pt_loss - np.log(config.vocab_size)) < 0.1  # untrained: nearly uniform


@pytest.mark.parametrize("name", CONFIGS)
def test_gradients_agree_for_every_parameter(name):
    config = CONFIGS[name]
    pt, tfm = family_twins(FAMILY, config)
    x, y, w = masked_batch(config)
    assert_gradients_agree(pt, tfm, state_shapes(config).keys(), x, y, w)


@pytest.mark.parametrize("name", ["tiny", "odd"])
def test_padding_never_changes_the_outputs_of_real_positions(name):
    config = CONFIGS[name]
    pt, tfm = family_twins(FAMILY, config)
    x, _, _ = masked_batch(config, count=1, padded=0)
    real = config.block_size - 4
    padded = x.copy()
    padded[:, real:] = PAD_ID
    with torch.no_grad():
        pt_short, pt_padded = pt(torch.from_numpy(x[:, :real])).numpy(), pt(torch.from_numpy(padded)).numpy()
    tf_short, tf_padded = tfm(tf.constant(x[:, :real])).numpy(), tfm(tf.constant(padded)).numpy()
    assert np.max(np.abs(pt_padded[:, :real] - pt_short)) <= 1e-5
    assert np.max(np.abs(tf_padded[:, :real] - tf_short)) <= 1e-5


def test_masked_lm_batches_follow_berts_recipe_and_repeat_from_the_seed():
    config = BERTConfig(block_size=33)
    split, _ = train_val_split(TEXT, config.block_size - 1, 0.1)
    task = MaskedLMTask(config.block_size)
    indices = np.arange(min(len(split), 60))
    batch = task.batch(split, indices, np.random.default_rng(7))
    again = task.batch(split, indices, np.random.default_rng(7))
    assert np.array_equal(batch.inputs, again.inputs) and np.array_equal(batch.weights, again.weights)
    windows, _ = split.windows(indices)
    assert (batch.targets[:, 0] == CLS_ID).all() and np.array_equal(batch.targets[:, 1:], windows)
    chosen = batch.weights > 0
    assert (chosen.sum(axis=1) == round(0.15 * 32)).all() and not chosen[:, 0].any()  # 15 %, never [CLS]
    assert np.array_equal(batch.inputs[~chosen], batch.targets[~chosen])  # only chosen positions change
    masked = (batch.inputs == MASK_ID)[chosen].mean()
    kept = (batch.inputs == batch.targets)[chosen].mean()
    assert 0.7 < masked < 0.9 and 0.05 < kept < 0.2  # 80 % [MASK]; 10 % kept (+ random draws of the same byte)
    assert batch.inputs.max() < config.vocab_size and not (batch.inputs == PAD_ID).any()


@pytest.mark.parametrize("name", CLASSIFY)
def test_the_classify_heads_agree_in_logits_loss_and_gradients(name):
    config = CLASSIFY[name]
    names = state_shapes(config).keys()
    assert "classifier.weight" in names
    results = assert_gradients_agree(*family_twins(FAMILY, config), names, *labelled_batch(config))
    (pt_logits, pt_loss, _), (tf_logits, tf_loss, _) = results
    assert pt_logits.shape == tf_logits.shape == (5, config.num_labels)
    assert np.max(np.abs(pt_logits - tf_logits)) <= LOGITS_ATOL
    assert abs(pt_loss - tf_loss) / pt_loss <= LOSS_RTOL


def test_an_encoder_pretrained_with_the_mlm_head_initialises_the_classifier(tmp_path):
    from harness.contract.state import zero_optimizer_state
    from harness.runner.resume import initial_state_from
    from harness.storage.checkpoint import save_checkpoint

    mlm, classify = FAMILY.preset("tiny"), FAMILY.preset("tiny-classify")
    pretrained = init_state(mlm, seed=5)
    record = {"family": "bert", "config": {"model": dataclasses.asdict(mlm)}}
    save_checkpoint(tmp_path, 40, pretrained, zero_optimizer_state(state_shapes(mlm)), record, keep=1)
    fresh = init_state(classify, seed=6)
    state, source, left_fresh = initial_state_from(tmp_path, FAMILY, fresh, ByteTokenizer())
    assert source.endswith("(step 40)")
    assert left_fresh == ["pooler.weight", "pooler.bias", "classifier.weight", "classifier.bias"]
    assert all(np.array_equal(state[n], pretrained[n]) for n in state if n not in left_fresh)
    assert all(np.array_equal(state[n], fresh[n]) for n in left_fresh)
    wider = BERTConfig(n_layer=2, n_head=2, n_embd=64, mlp_hidden=128, block_size=32, head="classify")
    with pytest.raises(ValueError, match=r"wte.weight has shape \(259, 32\) there, \(259, 64\) in this model"):
        initial_state_from(tmp_path, FAMILY, init_state(wider, seed=0), ByteTokenizer())


def test_the_topic_task_holds_out_a_fixed_balanced_set_of_padded_paragraphs():
    from harness.contract.config import DataConfig
    from harness.families.bert import TopicTask, majority_baseline

    train, val = TopicTask(block_size=128, num_labels=8).splits(DataConfig(val_fraction=0.2))
    again, _ = TopicTask(block_size=128, num_labels=8).splits(DataConfig(val_fraction=0.2))
    assert np.array_equal(train.inputs, again.inputs) and len(val) == round(0.2 * (len(train) + len(val)))
    assert (train.inputs[:, 0] == CLS_ID).all() and set(np.unique(train.labels)) == set(range(8))
    lengths = (train.inputs != PAD_ID).sum(axis=1)
    assert lengths.min() < 100 and lengths.max() == 128  # padded, and cut to the block
    assert majority_baseline(val) < 0.25  # eight roughly equal classes
