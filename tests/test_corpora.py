"""Tests of helpers.workloads.corpora: the docstring corpus, user files, token lengths, fixed-shape batches."""

import json

import pytest

from helpers.workloads import corpora
from helpers.workloads.corpora import CorpusError, length_summary, load_corpus, texts_at_length, token_lengths


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The docstring corpus built twice, into two separate directories."""
    dirs = [tmp_path_factory.mktemp("data_a"), tmp_path_factory.mktemp("data_b")]
    return dirs, [corpora.build_docstring_corpus(d) for d in dirs]


def _records(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_corpus_build_is_byte_identical(built):
    dirs, (a, b) = built
    assert a.name == corpora.corpus_path(dirs[0]).name
    assert a.name.startswith("corpus_docstrings_py3.") and a.suffix == ".jsonl"
    assert a.read_bytes() == b.read_bytes()
    ra, rb = _records(a), _records(b)
    assert ra[0] == rb[0] and ra[-1] == rb[-1]


def test_corpus_is_real_prose(built):
    records = _records(built[1][0])
    texts = [r["text"] for r in records]
    assert len(records) > 3000
    assert len(set(texts)) == len(texts)
    assert all(set(r) == {"text", "source"} for r in records)
    assert all(">>>" not in t and len(t.split()) >= 5 and "\n" not in t for t in texts)
    sources = [r["source"] for r in records]
    assert not any(s.split("/")[0] in {"test", "idlelib", "lib2to3", "site-packages"} for s in sources)
    assert any(s.startswith("json/") for s in sources)
    assert sum(t.count(" ") for t in texts) / len(texts) > 5  # sentences, not fragments


def test_load_builtin_corpus(built):
    corpus = load_corpus("docstrings", data_dir=built[0][0], label_column="source", limit=10)
    assert corpus.name == "docstrings" and corpus.source == built[1][0]
    assert len(corpus.texts) == len(corpus.labels) == 10


def test_paragraphs_filter():
    doc = (
        "Return the thing you asked for.\n\nLonger text that\nspans two lines here.\n\n"
        "    >>> f(1)\n    2\n\nToo short.\n\n{1: [2, 3], 4: (5, 6), 7: 8, 9: 10}"
    )
    assert corpora.paragraphs(doc) == ["Return the thing you asked for.", "Longer text that spans two lines here."]


def test_user_files(tmp_path):
    (tmp_path / "c.csv").write_text('text,label\nfirst text,1\n,2\n"second, quoted",0\n', encoding="utf-8")
    (tmp_path / "c.jsonl").write_text(
        '{"body": "one", "y": "a"}\n\n{"body": "", "y": "b"}\n{"body": "two", "y": "c"}\n', encoding="utf-8"
    )
    (tmp_path / "c.txt").write_text("line one\n\n  line two  \n", encoding="utf-8")
    csv = load_corpus(tmp_path / "c.csv", label_column="label")
    assert (csv.name, csv.texts, csv.labels) == ("c", ["first text", "second, quoted"], ["1", "0"])
    jsonl = load_corpus(str(tmp_path / "c.jsonl"), text_column="body", label_column="y")
    assert (jsonl.texts, jsonl.labels) == (["one", "two"], ["a", "c"])
    assert load_corpus(tmp_path / "c.jsonl", text_column="body").labels is None
    txt = load_corpus(tmp_path / "c.txt", limit=1)
    assert (txt.texts, txt.labels) == (["line one"], None)


def test_errors_name_their_parameter(tmp_path):
    (tmp_path / "c.csv").write_text("body,y\nhello,1\n", encoding="utf-8")
    (tmp_path / "c.txt").write_text("hello\n", encoding="utf-8")
    (tmp_path / "c.parquet").write_text("x", encoding="utf-8")
    cases = [
        (dict(corpus=tmp_path / "missing.csv"), r"corpus=.*no such file.*docstrings"),
        (dict(corpus="wikipedia"), r"corpus=.*accepted.*docstrings.*\.csv"),
        (dict(corpus=tmp_path / "c.parquet"), r"corpus=.*\.parquet.*accepted.*\.jsonl"),
        (dict(corpus=tmp_path / "c.csv"), r"text_column='text'.*accepted: \['body', 'y'\]"),
        (
            dict(corpus=tmp_path / "c.csv", text_column="body", label_column="label"),
            r"label_column='label'.*accepted: \['body', 'y'\]",
        ),
        (dict(corpus=tmp_path / "c.txt", label_column="y"), r"label_column='y'.*\.txt"),
        (dict(corpus=tmp_path / "c.txt", limit=0), r"limit=0"),
    ]
    for kwargs, pattern in cases:
        with pytest.raises(ValueError, match=pattern):
            load_corpus(**kwargs)


def test_token_lengths(tokenizer):
    texts = ["hello world", "", "hello " * 600]
    assert token_lengths(texts, tokenizer).tolist() == [4, 2, 602]  # [CLS] ... [SEP]
    assert token_lengths(texts, tokenizer, max_length=8).tolist() == [4, 2, 8]
    assert token_lengths(texts, tokenizer, chunk=2).tolist() == [4, 2, 602]


def test_length_summary():
    s = length_summary([10, 20, 30, 200, 600])
    assert s == {
        "n": 5,
        "mean": 172.0,
        "p50": 30.0,
        "p90": 440.0,
        "p99": 584.0,
        "max": 600,
        "share_above_128": 0.4,
        "share_above_256": 0.2,
        "share_above_512": 0.2,
    }
    with pytest.raises(ValueError):
        length_summary([])


def test_texts_at_length(tokenizer):
    texts = ["short one here"] * 3 + ["word " * 40, "a longer text " * 10, "tiny"]
    batch, n_real = texts_at_length(texts, tokenizer, batch_size=4, seq_len=16)
    assert {k: tuple(v.shape) for k, v in batch.items()} == {
        "input_ids": (4, 16),
        "token_type_ids": (4, 16),
        "attention_mask": (4, 16),
    }
    assert n_real == int(batch["attention_mask"].sum())
    # the two long texts first, then the longest short ones (too few to pack into 16)
    assert batch["attention_mask"].sum(1).tolist() == [16, 16, 5, 5]
    assert tokenizer.decode(batch["input_ids"][0][1:3]) == "word word"
    again, _ = texts_at_length(texts, tokenizer, batch_size=4, seq_len=16)
    assert all((again[k] == batch[k]).all() for k in batch)
    shifted, _ = texts_at_length(texts, tokenizer, batch_size=1, seq_len=16, offset=1)
    assert shifted["input_ids"][0].tolist() == batch["input_ids"][1].tolist()


def test_texts_at_length_cycles(tokenizer):
    batch, n_real = texts_at_length(["word " * 40, "other " * 40], tokenizer, 5, 8)
    assert n_real == 5 * 8
    rows = batch["input_ids"].tolist()
    assert rows[0] == rows[2] == rows[4] != rows[1] == rows[3]


def test_texts_at_length_packs_short_paragraphs(tokenizer):
    texts = [f"paragraph number {i} has a few words" for i in range(40)]
    lengths = token_lengths(texts, tokenizer)
    assert set(lengths.tolist()) == {9}
    packed, n_packed = texts_at_length(texts, tokenizer, 2, 64, lengths=lengths)
    assert n_packed == 2 * 64
    padded, n_padded = texts_at_length(texts, tokenizer, 2, 64, lengths=lengths, pack=False)
    assert n_padded == 2 * 9 and padded["input_ids"].shape == (2, 64)


def test_encoding_and_unreadable_files_name_their_parameter(tmp_path):
    (tmp_path / "latin.csv").write_bytes("text\ncafé au lait\n\n".encode("latin-1"))
    (tmp_path / "empty.txt").write_text("  \n")
    assert load_corpus(tmp_path / "latin.csv", encoding="latin-1").texts == ["café au lait"]
    cases = [
        (dict(corpus=tmp_path / "latin.csv"), "corpus", r"not valid utf-8 \(byte 0xe9 .*encoding="),
        (dict(corpus=tmp_path / "latin.csv", encoding="utf-9"), "encoding", r"encoding='utf-9' is not a codec"),
        (dict(corpus=tmp_path / "empty.txt"), "corpus", r"is empty"),
    ]
    for kwargs, parameter, pattern in cases:
        with pytest.raises(CorpusError, match=pattern) as info:
            load_corpus(**kwargs)
        assert info.value.parameter == parameter


# -- query/document pairs: the task score's retrieval ------------------------------------------
def test_a_docstrings_first_sentence_is_the_query_and_the_rest_its_document():
    doc = (
        "Return the nearest documents of a query, e.g. by cosine. Results are sorted\n"
        "by similarity, the nearest first.\n\n    >>> nearest('q')\n    ['d']\n\n"
        "Ties keep the order of the documents as they were given to the index."
    )
    query, document = corpora.docstring_pair(doc)
    assert query == "Return the nearest documents of a query, e.g. by cosine."  # "e.g. by" ends nothing
    assert document == (
        "Results are sorted by similarity, the nearest first. "
        "Ties keep the order of the documents as they were given to the index."
    )
    assert corpora.docstring_pair("Return self.\n\nA longer text that would be a fine document on its own.") is None
    assert corpora.docstring_pair("Return the thing you asked for.\n\nToo short a rest.") is None
    assert corpora.docstring_pair("f(a, b) -> (c, d) [e]: {g}.\n\n" + "A real document sentence here. " * 4) is None
    assert (
        corpora.docstring_pair("Return the thing you asked for.\n\n" + "Return the thing you asked for. " * 4) is None
    )
    assert corpora.first_sentence("One sentence only") == ("One sentence only", "")


def test_retrieval_pairs_are_real_seeded_and_unambiguous(tmp_path):
    records = _records(corpora.build_docstring_pairs())
    assert len(records) > 1000 and all(set(r) == {"query", "document", "source"} for r in records)
    assert len({r["query"] for r in records}) == len({r["document"] for r in records}) == len(records)
    assert all(len(r["query"].split()) >= 4 and len(r["document"].split()) >= 12 for r in records)
    assert all(r["query"] not in r["document"] for r in records)  # no answer given away
    pairs = corpora.retrieval_pairs("docstrings", 50, seed=0)
    assert len(pairs) == 50 and len(pairs.documents) == len(pairs.sources) == 50
    again = corpora.retrieval_pairs("docstrings", 50, seed=0)
    assert (again.queries, again.documents) == (pairs.queries, pairs.documents)
    assert corpora.retrieval_pairs("docstrings", 50, seed=1).queries != pairs.queries
    assert corpora.retrieval_pairs("docstrings", 10**6).queries == [r["query"] for r in records]  # all, in order


def test_a_user_corpus_has_no_task_score_and_says_why(tmp_path):
    user = tmp_path / "tickets.csv"
    user.write_text("text\nfirst ticket\nsecond ticket\n", encoding="utf-8")
    with pytest.raises(corpora.NoRetrievalTask, match="user file: its texts have no query/document pairs"):
        corpora.retrieval_pairs(str(user), 10)
    pairs, note = corpora.retrieval_task(str(user), 200)
    assert pairs is None and "tickets.csv" in note and "no query/document pairs" in note
    assert corpora.retrieval_task("docstrings", 200, random_weights=True) == (None, corpora.RANDOM_WEIGHTS_NOTE)
    assert corpora.retrieval_task("docstrings", 0)[0] is None and "task_size=0" in corpora.retrieval_task("x", 0)[1]
    pairs, note = corpora.retrieval_task("docstrings", 12)
    assert len(pairs) == 12 and note == ""
    with pytest.raises(ValueError, match="n=0"):
        corpora.retrieval_pairs("docstrings", 0)
