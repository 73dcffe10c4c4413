"""Fidelity metrics against inputs whose answers are known by hand."""

import time

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from helpers.core import fidelity
from helpers.workloads.models import minilm_dir


def _angles(degrees):
    """Unit vectors in the plane at the given angles."""
    r = np.radians(degrees)
    return np.stack([np.cos(r), np.sin(r)], axis=1)


def test_mean_pool_ignores_padding():
    hidden = np.array([[[1.0, 2.0], [3.0, 4.0], [1e9, -1e9]]])
    mask = np.array([[1, 1, 0]])
    np.testing.assert_allclose(fidelity.mean_pool(hidden, mask), [[2.0, 3.0]])
    # torch inputs (bf16 included) work too
    pooled = fidelity.mean_pool(torch.tensor(hidden[:, :2]).bfloat16(), torch.tensor(mask[:, :2]))
    np.testing.assert_allclose(pooled, [[2.0, 3.0]])


def test_normalize_unit_rows_and_zero_rows():
    out = fidelity.normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])


def test_identical_embeddings_agree_perfectly():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(50, 16))
    agreement = fidelity.embedding_agreement(emb, emb.copy())
    assert agreement["cosine_min"] == pytest.approx(1.0)
    assert agreement["cosine_mean"] == pytest.approx(1.0)
    assert agreement["n"] == 50
    assert fidelity.recall_at_k(emb, emb.copy(), k=10) == 1.0
    hidden = rng.normal(size=(2, 5, 4))
    assert fidelity.max_abs_diff(hidden, hidden.copy(), np.ones((2, 5))) == 0.0


def test_cosine_and_recall_ignore_scale():
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(30, 8))
    scaled = emb * rng.uniform(0.5, 3.0, size=(30, 1))
    assert fidelity.embedding_agreement(emb, scaled)["cosine_min"] == pytest.approx(1.0)
    assert fidelity.recall_at_k(emb, scaled, k=5) == 1.0


def test_known_cosine():
    ref = _angles([0, 0])
    var = _angles([0, 60])
    agreement = fidelity.embedding_agreement(ref, var)
    assert agreement["cosine_min"] == pytest.approx(0.5)
    assert agreement["cosine_mean"] == pytest.approx(0.75)


def test_recall_hand_built_case():
    # Reference points at 0, 10, 30, 100 degrees; the variant moves the last one to 4.
    # k=1 neighbours: ref 0->1, 1->0, 2->1, 3->2; variant 0->3, 1->3, 2->1, 3->0: 1 of 4 kept.
    ref = _angles([0, 10, 30, 100])
    var = _angles([0, 10, 30, 4])
    assert fidelity.recall_at_k(ref, var, k=1) == pytest.approx(0.25)
    # k=2: ref {1,2} {0,2} {0,1} {1,2}; variant {1,3} {0,3} {1,3} {0,1}: 1 of 2 kept for each.
    assert fidelity.recall_at_k(ref, var, k=2) == pytest.approx(0.5)
    # swapping texts 0 and 1 (at 0 and 10 degrees) keeps them each other's nearest, but
    # text 2's nearest becomes text 0 (now at 10 degrees) instead of 1: 3 of 4 kept
    swapped = ref[[1, 0, 2, 3]]
    assert fidelity.recall_at_k(ref, swapped, k=1) == pytest.approx(0.75)


def _recall_brute_force(ref, var, k):
    def neighbours(emb, i):
        sims = fidelity.normalize(emb) @ fidelity.normalize(emb)[i]
        sims[i] = -np.inf
        return set(np.argsort(-sims)[:k])

    return np.mean([len(neighbours(ref, i) & neighbours(var, i)) / k for i in range(len(ref))])


def test_recall_matches_brute_force_and_chunking():
    rng = np.random.default_rng(2)
    ref = rng.normal(size=(60, 8))
    var = ref + rng.normal(scale=0.3, size=ref.shape)
    expected = _recall_brute_force(ref, var, k=5)
    assert 0.2 < expected < 1.0  # a case that is neither trivial nor hopeless
    assert fidelity.recall_at_k(ref, var, k=5) == pytest.approx(expected)
    assert fidelity.recall_at_k(ref, var, k=5, chunk=7) == pytest.approx(expected)


def test_recall_is_fast_on_thousands_of_texts():
    rng = np.random.default_rng(3)
    ref = rng.normal(size=(3000, 384)).astype(np.float32)
    var = ref + rng.normal(scale=0.05, size=ref.shape).astype(np.float32)
    start = time.perf_counter()
    recall = fidelity.recall_at_k(ref, var, k=10)
    assert time.perf_counter() - start < 10
    assert 0.0 < recall <= 1.0


def test_recall_rejects_bad_k_and_shapes():
    emb = np.eye(5)
    with pytest.raises(ValueError, match="k=5"):
        fidelity.recall_at_k(emb, emb, k=5)
    with pytest.raises(ValueError, match="shapes differ"):
        fidelity.recall_at_k(emb, emb[:4], k=2)


def test_max_abs_diff_ignores_padded_positions():
    ref = np.zeros((2, 3, 4))
    var = np.zeros((2, 3, 4))
    var[0, 1, 2] = 0.5
    var[1, 2, :] = 1e6  # a padded position: must not count
    mask = np.array([[1, 1, 1], [1, 1, 0]])
    assert fidelity.max_abs_diff(ref, var, mask) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="no valid token"):
        fidelity.max_abs_diff(ref, var, np.zeros((2, 3)))


def test_classification_scores_hand_computed():
    y_true = [0, 0, 0, 1, 1, 2]
    y_pred = [0, 0, 1, 1, 2, 2]
    # per class F1: 0 -> P 1, R 2/3 -> 0.8; 1 -> P 1/2, R 1/2 -> 0.5; 2 -> P 1/2, R 1 -> 2/3
    scores = fidelity.classification_scores(y_true, y_pred)
    assert scores["accuracy"] == pytest.approx(4 / 6)
    assert scores["f1_macro"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert scores["f1_weighted"] == pytest.approx((3 * 0.8 + 2 * 0.5 + 1 * 2 / 3) / 6)
    assert scores["n"] == 6
    # string labels work the same way
    named = fidelity.classification_scores(["a", "b"], ["a", "a"])
    assert named["accuracy"] == 0.5


def _fake_runner(calls):
    """A runner whose token vectors depend only on the token id, like a bag of words."""

    def run(batch):
        calls.append(batch)
        ids = batch["input_ids"].numpy()
        return np.stack([np.sin(ids * 0.01), np.cos(ids * 0.003), (ids % 7) / 7.0], axis=-1)

    return run


def test_embed_texts_order_padding_and_inputs(tokenizer):
    texts = [
        "a short one",
        "a much longer text about the standard library and its modules",
        "medium length text here",
        "x",
    ]
    calls = []
    names = ["input_ids", "attention_mask", "token_type_ids"]
    emb = fidelity.embed_texts(_fake_runner(calls), texts, tokenizer, 3, 64, names)
    assert emb.shape == (4, 3)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-6)
    assert len(calls) == 2 and all(isinstance(v, torch.Tensor) for v in calls[0].values())
    assert set(calls[0]) == set(names)
    # each text alone (no padding at all) gives the same embedding: order kept, padding ignored
    one_by_one = fidelity.embed_texts(_fake_runner([]), texts, tokenizer, 1, 64, names)
    np.testing.assert_allclose(emb, one_by_one, atol=1e-6)
    unsorted = fidelity.embed_texts(_fake_runner([]), texts, tokenizer, 3, 64, names, sort_by_length=False)
    np.testing.assert_allclose(emb, unsorted, atol=1e-6)
    # deterministic, and truncation at max_length applies
    again = fidelity.embed_texts(_fake_runner([]), texts, tokenizer, 3, 64, names)
    np.testing.assert_array_equal(emb, again)
    calls = []
    fidelity.embed_texts(_fake_runner(calls), texts, tokenizer, 4, 5, names)
    assert calls[0]["input_ids"].shape[1] == 5


def test_embed_texts_with_a_torch_model(tokenizer):
    from helpers.workloads.models import load_model

    lm = load_model("bert-tiny")

    def run(batch):
        with torch.inference_mode():
            return lm.model(**batch).last_hidden_state

    texts = ["first text of the test", "second one", "and a third, longer text to pad the others"]
    emb = fidelity.embed_texts(run, texts, lm.tokenizer, 2, 32, lm.input_names, normalized=False)
    enc = lm.tokenizer(texts[1], return_tensors="pt")
    with torch.inference_mode():
        alone = lm.model(**enc).last_hidden_state.mean(dim=1).numpy()
    np.testing.assert_allclose(emb[1], alone[0], atol=1e-5)


def test_classification_head_on_encoder_output_matches_the_full_model(tmp_path):
    from transformers import BertConfig, BertForSequenceClassification

    from helpers.backends import engines
    from helpers.workloads.models import load_model

    torch.manual_seed(0)
    config = BertConfig(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        num_labels=3,
        id2label={0: "bug", 1: "question", 2: "docs"},
        label2id={"bug": 0, "question": 1, "docs": 2},
    )
    clf = BertForSequenceClassification(config).eval()
    clf.save_pretrained(tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir())
    tokenizer.save_pretrained(tmp_path)
    texts = [
        "It crashes on start.",
        "How do I install it?",
        "The README has a typo in section two.",
        "Segfault when loading a large file",
        "Where are the docs?",
    ]
    head, id2label = fidelity.classification_head(tmp_path)
    loaded = load_model(str(tmp_path))
    eager = engines.build_engine("eager", loaded)
    predicted = fidelity.predict_texts(eager, head, id2label, texts, loaded.tokenizer, 2, 128, loaded.input_names)
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = [config.id2label[int(i)] for i in clf(**enc).logits.argmax(1)]
    assert predicted == expected
    assert fidelity.classification_head(minilm_dir()) is None  # an encoder without a head


# -- the task score: retrieval of each query's own document ------------------------------------
def _queries_at_ranks(ranks):
    """Queries over the documents e_0..e_{n-1} (the identity) whose own document ranks exactly
    where asked: query i weighs document i by 1 and rank - 1 other documents by 2."""
    n = len(ranks)
    queries = np.eye(n)
    for i, rank in enumerate(ranks):
        rivals = [j for j in range(n) if j != i][: rank - 1]
        queries[i, rivals] = 2.0
    return queries, np.eye(n)


def test_task_score_hand_built_ranks():
    ranks = [1, 1, 1, 2, 2, 3, 4, 5, 10, 11, 12, 1]
    queries, docs = _queries_at_ranks(ranks)
    score = fidelity.task_score(queries, docs)
    assert score["n"] == 12
    assert score["recall_at_10"] == pytest.approx(10 / 12)  # ranks 11 and 12 miss, rank 10 counts
    expected_mrr = (4 * 1 + 2 * 1 / 2 + 1 / 3 + 1 / 4 + 1 / 5 + 1 / 10) / 12
    assert score["mrr_at_10"] == pytest.approx(expected_mrr)
    at_1 = fidelity.task_score(queries, docs, k=1)
    assert at_1["recall_at_1"] == pytest.approx(4 / 12) and at_1["mrr_at_1"] == pytest.approx(4 / 12)
    # cosine: the scale of a vector does not matter, nor does the chunking
    scaled = fidelity.task_score(queries * np.arange(1, 13)[:, None], docs * 3.0, chunk=5)
    assert scaled == pytest.approx(score)


def test_task_score_perfect_and_ties_count_against_the_own_document():
    rng = np.random.default_rng(4)
    docs = rng.normal(size=(20, 8))
    perfect = fidelity.task_score(docs + 1e-3 * rng.normal(size=docs.shape), docs)
    assert perfect == {"recall_at_10": 1.0, "mrr_at_10": 1.0, "n": 20}
    queries, docs = np.eye(11), np.eye(11)
    queries[0, 1] = 1.0  # query 0 is as near document 1 as its own: rank 2, not 1
    tied = fidelity.task_score(queries, docs)
    assert tied["recall_at_10"] == 1.0 and tied["mrr_at_10"] == pytest.approx((10 + 1 / 2) / 11)


def test_task_score_rejects_too_few_pairs_and_unpaired_shapes():
    with pytest.raises(ValueError, match="k=10 needs"):
        fidelity.task_score(np.eye(10), np.eye(10))
    with pytest.raises(ValueError, match="shapes differ"):
        fidelity.task_score(np.eye(12), np.eye(12)[:11])


def test_task_columns_give_the_share_of_fp32_or_say_why_there_is_none():
    fp32 = {"recall_at_10": 0.9, "mrr_at_10": 0.8, "n": 200}
    variant = {"recall_at_10": 0.85, "mrr_at_10": 0.76, "n": 200}
    row = fidelity.task_columns(variant, fp32)
    assert set(row) == set(fidelity.TASK_COLUMNS)
    assert row["task_mrr_share_of_fp32"] == pytest.approx(0.95) and row["task_recall_at_10"] == 0.85
    assert row["task_n"] == 200 and row["task_note"] == ""
    assert fidelity.task_columns(fp32, fp32)["task_mrr_share_of_fp32"] == 1.0
    missing = fidelity.task_columns(None, None, "random weights")
    assert missing["task_note"] == "random weights"
    assert all(np.isnan(missing[c]) for c in fidelity.TASK_COLUMNS if c != "task_note")
