"""Tests of helpers.workloads.models: shapes, the real MiniLM, local directories, name checks, FLOPs."""

import pytest
import torch
from transformers import AutoTokenizer, DistilBertConfig, DistilBertModel

from helpers.workloads import models
from helpers.workloads.models import (
    SHAPES,
    check_model_name,
    count_params,
    describe_model_name,
    encoder_flops,
    load_model,
    model_max_length,
    shape_config,
)


@pytest.fixture(scope="module")
def distil_dir(tmp_path_factory):
    """A tiny DistilBERT with random weights, saved with the MiniLM tokenizer."""
    path = tmp_path_factory.mktemp("distil")
    config = DistilBertConfig(
        vocab_size=30522, dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=128
    )
    torch.manual_seed(0)
    DistilBertModel(config).save_pretrained(path)
    AutoTokenizer.from_pretrained(models.minilm_dir()).save_pretrained(path)
    return path


def test_shapes_have_published_sizes():
    published = {  # name: (layers, hidden, heads)
        "bert-tiny": (2, 128, 2),
        "bert-mini": (4, 256, 4),
        "bert-small": (4, 512, 8),
        "bert-medium": (8, 512, 8),
        "bert-base": (12, 768, 12),
        "bert-large": (24, 1024, 16),
    }
    assert list(SHAPES) == list(published)
    for name, (layers, hidden, heads) in published.items():
        c = shape_config(name)
        assert (c.num_hidden_layers, c.hidden_size, c.num_attention_heads) == (layers, hidden, heads)
        assert c.intermediate_size == 4 * hidden
        assert (c.vocab_size, c.max_position_embeddings) == (30522, 512)


def test_shape_parameter_counts():
    tiny = load_model("bert-tiny")
    assert tiny.n_params == 4_385_920  # ≈ 4.4M
    assert load_model("bert-base").n_params == 109_482_240  # ≈ 109.5M
    assert tiny.random_weights and tiny.label == "bert-tiny (random weights, seed 0)"
    assert not tiny.model.training
    assert tiny.max_length == 512
    assert tiny.input_names == ["input_ids", "attention_mask", "token_type_ids"]


def test_shapes_are_seed_deterministic():
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a = load_model("bert-tiny", seed=0).model.state_dict()
    assert torch.equal(torch.rand(3), expected_next), "building moved the caller's RNG"
    b = load_model("bert-tiny", seed=0).model.state_dict()
    c = load_model("bert-tiny", seed=1).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(
        a["encoder.layer.0.attention.self.query.weight"], c["encoder.layer.0.attention.self.query.weight"]
    )


def test_shape_dtype():
    m = load_model("bert-tiny", torch_dtype="bfloat16")
    assert next(m.model.parameters()).dtype == torch.bfloat16


def test_minilm_loads_offline_and_embeds(minilm):
    assert minilm.n_params == 22_713_216  # 22.7M
    assert (minilm.config.num_hidden_layers, minilm.config.hidden_size) == (6, 384)
    assert not minilm.random_weights and "real weights" in minilm.label
    assert minilm.max_length == 512 == model_max_length("minilm")
    sentences = ["A man is eating food.", "A man is eating a piece of bread.", "The stock market fell sharply today."]
    batch = minilm.tokenizer(sentences, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = minilm.model(**{k: batch[k] for k in minilm.input_names}).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1)
    emb = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
    assert emb.shape == (3, 384) and torch.isfinite(emb).all()
    sim = emb @ emb.T
    assert sim[0, 1] > sim[0, 2] + 0.2  # real weights: related sentences are closer


def test_local_distilbert_directory(distil_dir):
    assert describe_model_name(str(distil_dir)) == "local"
    m = load_model(str(distil_dir))
    assert m.input_names == ["input_ids", "attention_mask"]  # no token_type_ids
    assert m.max_length == 128 == model_max_length(distil_dir)  # config caps tokenizer's 512
    assert not m.random_weights and m.n_params == count_params(m.model)
    batch = m.tokenizer(["hello world"], return_tensors="pt")
    with torch.no_grad():
        out = m.model(**{k: batch[k] for k in m.input_names}).last_hidden_state
    assert out.shape == (1, 4, 32)
    assert encoder_flops(m.config, 1, 10) == 2 * (2 * 10 * (4 * 32**2 + 2 * 32 * 64) + 4 * 10**2 * 32)


@pytest.mark.parametrize(
    "name",
    ["bert-huge", "BERT-BASE", "./no/such/dir", "/no/such", "~/nope", "a/b/c", "", 123, None, "bert-base-uncased"],
)
def test_bad_model_names_are_rejected(name):
    with pytest.raises(ValueError, match=r"model=.*accepted:.*bert-base.*minilm.*org/name"):
        check_model_name(name)
    with pytest.raises(ValueError, match="model="):
        load_model(name)


def test_directory_without_config_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="config.json"):
        check_model_name(str(tmp_path))


def test_name_kinds():
    assert describe_model_name("bert-base") == "shape"
    assert describe_model_name("minilm") == "real"
    assert describe_model_name("google-bert/bert-base-uncased") == "hub"
    check_model_name("org/name")  # accepted without network
    assert model_max_length("org/name") is None
    assert model_max_length("bert-large") == 512


def test_encoder_flops_bert_base_hand_count():
    config = shape_config("bert-base")
    hand = 12 * (2 * 128 * (4 * 768**2 + 2 * 768 * 3072) + 4 * 128**2 * 768)
    assert hand == 22_347_251_712
    assert encoder_flops(config, 1, 128) == hand
    assert encoder_flops(config, 8, 128) == 8 * hand
    # DistilBERT naming and plain dicts describe the same arithmetic
    distil = DistilBertConfig(dim=768, n_layers=12, n_heads=12, hidden_dim=3072)
    assert encoder_flops(distil, 1, 128) == hand
    assert encoder_flops({"hidden_size": 768, "num_hidden_layers": 12, "intermediate_size": 3072}, 1, 128) == hand
