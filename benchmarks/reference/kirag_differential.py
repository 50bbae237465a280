"""Record the KiRAG reference's behaviour on a fixed set of cases, for the differential replay test.

The reference is jyfang6/kirag at commit 3098584d (no licence: this script imports and runs its
code from a checkout the user makes; nothing of it is copied — only its outputs on our inputs are
recorded as facts). Models are replaced at the boundary by the shared fakes of
tests/kirag_reference_fakes.py (seeded-hash bi-encoder, scripted LLM, fixed document hits); every
other line that runs is the reference's. Run by hand:

    git --git-dir=<bare clone of jyfang6/kirag> archive 3098584d | tar -x -C /tmp/kirag-ref
    pip install --target /tmp/refdeps dill base58      # the reference's hash_object needs them
    PYTHONPATH=/tmp/refdeps .venv/bin/python benchmarks/reference/kirag_differential.py \\
        /tmp/kirag-ref tests/data/kirag_reference_cases.json.gz

Needs torch, transformers, nltk (+ the punkt_tab data llama-index-core ships), faiss, regex —
all in kirag's venv. The cases cover steps A–K of issue 26; tests/test_reference_differential.py
replays each through kirag and demands equality.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import sys
import tempfile
import types
from pathlib import Path

REPO = "jyfang6/kirag"
COMMIT = "3098584d"
ROOT = Path(__file__).resolve().parents[2]


def setup(reference: Path):
    """Import path, NLTK data and the fakes patched in where the reference loads models."""
    sys.path[:0] = [str(reference), str(ROOT / "tests"), str(ROOT)]
    import nltk

    from kirag.knowledge.sentences import _nltk_data_dirs

    nltk.data.path.extend(_nltk_data_dirs())
    import kirag_reference_fakes as fakes
    import retriever.e5 as e5
    import torch

    class HashE5(torch.nn.Module):
        """The untrained E5 of retriever/e5.py: every token's hidden state is the text's
        seeded-hash vector, so the reference's own mean pooling returns it."""

        def forward(self, input_ids, attention_mask, token_type_ids=None, **_):
            rows = []
            for ids, mask in zip(input_ids.tolist(), attention_mask.tolist(), strict=True):
                vector = fakes.embed_ids([i for i, m in zip(ids, mask, strict=True) if m])
                rows.append([vector.tolist()] * len(ids))
            return types.SimpleNamespace(last_hidden_state=torch.tensor(rows))

    e5.tokenizer = fakes.bert_tokenizer()
    e5.model = HashE5()
    e5.device = torch.device("cpu")
    return fakes


def hash_aligner_module():
    """The aligner behind the reference's BaseRetriever surface (query/doc embeddings)."""
    import kirag_reference_fakes as fakes
    import torch

    class HashAligner(torch.nn.Module):
        device = torch.device("cpu")

        def __init__(self, *args, **kwargs):
            super().__init__()
            self.anchor = torch.nn.Parameter(torch.zeros(1))

        def _embed(self, args):
            ids, mask = args["input_ids"].tolist(), args["attention_mask"].tolist()
            return torch.tensor(
                [
                    fakes.embed_ids([i for i, m in zip(r, k, strict=True) if m]).tolist()
                    for r, k in zip(ids, mask, strict=True)
                ]
            )

        def query(self, args, **_):
            return self._embed(args)

        def doc(self, args, **_):
            return self._embed(args)

    return HashAligner


def scripted_llm(tokenizer, script: list[str], seen: list[dict]):
    """A LlamaForCausalLM whose generate returns the next canned outputs and records each
    prompt it was given (its token ids without padding, and their text)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    class ScriptedLlama(LlamaForCausalLM):
        def generate(self, input_ids=None, attention_mask=None, **kwargs):
            outputs = []
            for ids, mask in zip(input_ids.tolist(), attention_mask.tolist(), strict=True):
                kept = [i for i, m in zip(ids, mask, strict=True) if m]
                seen.append({"ids": kept, "text": tokenizer.decode(kept)})
                text = script.pop(0)
                outputs.append(
                    tokenizer(text, add_special_tokens=False)["input_ids"]
                    + [tokenizer.eos_token_id]
                )
            width = max(len(o) for o in outputs)
            pad = tokenizer.pad_token_id
            new = torch.tensor([o + [pad] * (width - len(o)) for o in outputs])
            sequences = torch.cat([input_ids, new], dim=1)
            scores = tuple(torch.zeros(len(outputs), 1) for _ in range(width))
            if kwargs.get("return_dict_in_generate"):
                return types.SimpleNamespace(sequences=sequences, scores=scores)
            return sequences

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=8,
        intermediate_size=8,
        num_hidden_layers=1,
        num_attention_heads=1,
        num_key_value_heads=1,
    )
    model = ScriptedLlama(config)
    model.config._name_or_path = "scripted-instruct"
    return model


# ---------------------------------------------------------------------------------------------
# Inputs: kirag's own texts (no text of the reference's repository)

ENTITIES = [
    ("Lyon", "France", "city"), ("Turin", "Italy", "city"), ("Porto", "Portugal", "city"),
    ("Ghent", "Belgium", "city"), ("Graz", "Austria", "city"), ("Bergen", "Norway", "city"),
    ("Aarhus", "Denmark", "city"), ("Tartu", "Estonia", "city"), ("Kaunas", "Lithuania", "city"),
    ("Brno", "Czech Republic", "city"), ("Cork", "Ireland", "city"), ("Split", "Croatia", "city"),
]  # fmt: skip
PEOPLE = [
    ("Ada Lovelace", "London", "mathematician"), ("Marie Curie", "Warsaw", "physicist"),
    ("Alan Turing", "Maida Vale", "computer scientist"), ("Emmy Noether", "Erlangen", "mathematician"),
    ("Niels Bohr", "Copenhagen", "physicist"), ("Lise Meitner", "Vienna", "physicist"),
    ("Grace Hopper", "New York City", "computer scientist"), ("Kurt Gödel", "Brno", "logician"),
]  # fmt: skip


def chain_pool(n: int = 18) -> list[dict]:
    """Chain demonstrations in the reference's format (question, comma-joined chains, answer)."""
    pool = []
    for i in range(n):
        person, city, job = PEOPLE[i % len(PEOPLE)]
        town, country, _ = ENTITIES[i % len(ENTITIES)]
        if i % 3 == 0:
            question = f"In which country was the {job} {person} born?"
            chains = f"<{person}; born in; {city}>, <{city}; located in; {country}>"
            answer = country
        elif i % 3 == 1:
            question = f"What is the country of the city where {person} studied, {town}?"
            chains = f"<{person}; studied in; {town}>, <{town}; country; {country}>"
            answer = country
        else:
            question = f"Who was born in {city} and worked as a {job}?"
            chains = f"<{city}; birthplace of; {person}>"
            answer = person
        pool.append({"question": question, "chains": chains, "answer": answer})
    return pool


def extraction_pool(n: int = 14) -> list[dict]:
    """Extraction demonstrations in the reference's format; some triples strings end in "\\n"
    (as some of the reference's own do)."""
    pool = []
    for i in range(n):
        person, city, job = PEOPLE[i % len(PEOPLE)]
        town, country, _ = ENTITIES[(i * 5) % len(ENTITIES)]
        text = (
            f"{person} was a {job} born in {city}. In {1850 + 7 * i} {person.split()[-1]} moved "
            f"to {town}, a city of {country}, where the work continued for {i + 2} years."
        )
        if i % 4 == 1:
            text += " " + " ".join(f"Note {j}: {town} hosted event {j}." for j in range(30))
        triples = "\n".join(
            [
                f"<{person}; occupation; {job}>",
                f"<{person}; born in; {city}>",
                f"<{person}; moved to; {town}>",
                f"<{town}; country; {country}>",
            ]
        )
        if i % 3 == 2:
            triples += "\n"
        pool.append({"title": person, "text": text, "triples": triples})
    return pool


def questions() -> list[str]:
    out = []
    for i, (person, city, job) in enumerate(PEOPLE):
        town = ENTITIES[i][0]
        out += [
            f"Where was {person} born?",
            f"Which country is {town} in, where the {job} {person} lived?",
            f"What job did the person born in {city} have?",
        ]
    long = " ".join(
        f"clause {j} about {PEOPLE[j % 8][0]} and {ENTITIES[j % 12][0]}" for j in range(60)
    )
    out += [f"Given that {long}, where was Ada Lovelace born?", f"{long}?"]
    return out


GENERATIONS = [
    "<Lyon; located in; France>. So the answer is: France",
    " <Ada Lovelace; born in; London>",
    ". ; <Turin; country; Italy> and more",
    "So the answer is: Lyon",
    "<So the answer is: Lyon>",
    "<So the answer is: France>",
    "<something unrelated; none; nothing>",
    "<head entity; relation; tail entity> <Porto; country; Portugal>",
    "The city is known for e.g. silk weaving. It is in France.",
    "Mr. Smith went to Washington D.C. yesterday. He stayed.",
    "The U.S. Navy built it in 1942. Later it sank.",
    "She was born in St. Petersburg, Russia. So the answer is: Russia",
    "",
    "   ",
    "<>",
    "<Lyon; located in; France",
    "Lyon>; <France>",
    "So the answer is: yes",
    "<So the answer is: no>",
    "no triple here, just text without a full stop",
    "Dr. No is a film (1962). It stars Sean Connery.",
    "<Grace Hopper; born in; New York City>\n<New York City; country; United States>",
    "Thought: <Marie Curie; born in; Warsaw>",
    "... answer is: Warsaw",
    "<Emmy Noether;born in;Erlangen>",
    "<  Niels Bohr ;  born in ; Copenhagen  >",
    "The answer is 42 (approx.). That is all.",
    "First sentence ends here! Second one? Third.",
    "i.e. this starts lower case. And continues.",
    "<Kurt Gödel; born in; Brno>. So the answer is: Czech Republic",
]


def pool_triples() -> list[str]:
    """Candidate triple texts (with deliberate duplicates and near-duplicates)."""
    out = []
    for person, city, job in PEOPLE:
        out += [f"<{person}; born in; {city}>", f"<{person}; occupation; {job}>"]
    for town, country, _ in ENTITIES:
        out += [f"<{town}; located in; {country}>", f"<{town}; country; {country}>"]
    out += ["<Lyon; located in; France>", "<So the answer is; Lyon; x>", "<Lyon>", "<a; b; c; d>"]
    return out


# ---------------------------------------------------------------------------------------------
# Recording


def record(reference: Path) -> dict:
    fakes = setup(reference)
    import evaluation.qa_eval as qa_eval
    import knowledge_graph.models as models
    import torch
    from evaluation.metrics import f1_score
    from generator.generator import AnswerGenerator, Generator
    from knowledge_graph.kg_generator import KGGenerator
    from retriever.retrievers import DenseRetriever

    chat = fakes.chat_tokenizer()
    bert = fakes.bert_tokenizer()
    script: list[str] = []
    seen: list[dict] = []
    llm = scripted_llm(chat, script, seen)

    # the aligner: the reference's own load_aligner, its tokenizer and encoder replaced
    models.AutoTokenizer = types.SimpleNamespace(from_pretrained=lambda *a, **k: bert)
    aligner_class = hash_aligner_module()
    models.BaseRetriever = aligner_class

    class FixedHits(DenseRetriever):
        """The reference's DenseRetriever (its get_documents) over recorded hits."""

        def __init__(self, corpus: dict, hits: dict):
            torch.nn.Module.__init__(self)
            self.corpus = types.SimpleNamespace(get_document=lambda docid: corpus[docid])
            self.hits = hits

        def forward(self, queries, topk, **_):
            return [[{"id": d, "score": s} for d, s in self.hits[q][:topk]] for q in queries]

    constructor = Generator(chat, llm, max_length=4096, max_new_tokens=64, is_chat=True)
    kg = KGGenerator(chat, llm, max_length=4096, max_new_tokens=512, examplar_type="hotpotqa")
    kirag_ref = models.KiRAG(
        retriever=FixedHits({}, {}), kg_generator=kg, constructor=constructor,
        examplar_type="hotpotqa", aligner_model="e5",
    )  # fmt: skip
    chains = chain_pool()
    kirag_ref.reasoning_chain_examplars = chains
    kirag_ref.examplars_embeddings = kirag_ref.calculate_examplars_embeddings()
    ext_pool = extraction_pool()
    kg.examplars = ext_pool
    kg.examplars_embeddings = kg.calculate_examplars_embeddings()

    cases: list[dict] = []
    rng = random.Random(26)
    triples = pool_triples()

    # A: token F1 (the bonus's match)
    for i in range(40):
        a, b = rng.choice(triples), rng.choice(triples + GENERATIONS)
        if i % 5 == 0:
            b = a.replace(";", " ;").upper()
        cases.append({"step": "A", "kind": "f1", "input": {"prediction": a, "truth": b},
                      "expected": {"f1": float(f1_score(a, b)[0])}})  # fmt: skip

    # A: bonuses on a pool (ids t0..), for one generated step
    steps = [
        "<Lyon; located in; France>", "<So the answer is: Lyon>", "<So the answer is: Porto>",
        "So the answer is: Lyon", "So the answer is: france", "<Ada Lovelace; born in; London>",
        "<Ada Lovelace; born; Paris>", "<unrelated; words; here>", "answer is: yes", "",
        "<Turin; country; Italy>. So the answer is: Italy", "<Lyon; located in; France> answer is: France",
        "So the answer is: ", "<Lyon>", "The answer is: Lyon", "<Marie Curie; born in; Warsaw>. So the answer is: Warsaw",
    ]  # fmt: skip
    for i in range(56):
        size = rng.randint(1, 14)
        texts = rng.sample(triples, size)
        if i % 4 == 0:
            texts.append(texts[0])  # the same text twice (two documents)
        scores = [round(rng.uniform(0.2, 0.9), 3) if i % 7 else 0.5 for _ in texts]
        step = steps[i % len(steps)]
        id2score = {f"t{j}": s for j, s in enumerate(scores)}
        id2triple = {
            f"t{j}": {"title": "", "text": t, "reference": ["d", 0]} for j, t in enumerate(texts)
        }
        kirag_ref.update_reasoning_chains_triples_based_on_f1_score(id2score, id2triple, [step])
        cases.append({"step": "A", "kind": "bonus",
                      "input": {"pool": [[t, s] for t, s in zip(texts, scores, strict=True)], "step": step},
                      "expected": {"scores": [id2score[f"t{j}"] for j in range(len(texts))]}})  # fmt: skip

    # A/B: constructor messages, prefilled prompt and next step, through one_retrieval
    qs = questions()
    with contextlib.redirect_stdout(io.StringIO()):
        for i in range(64):
            question = qs[i % len(qs)]
            candidates = rng.sample(triples, rng.randint(0, 12))
            chain = rng.sample(triples, rng.randint(0, 3))
            ranked = rng.sample(range(len(chains)), len(chains))
            generated = GENERATIONS[i % len(GENERATIONS)]
            instructions, inputs = kirag_ref.get_constructor_inputs(
                question, [{"title": "", "text": t} for t in candidates], ranked
            )
            script.append(generated)
            before = len(seen)
            out = kirag_ref.one_retrieval(
                question=question, triples=[{"title": "", "text": t} for t in candidates],
                reasoning_chains=[list(chain)], ranked_examplars_indices=ranked,
            )  # fmt: skip
            (prompt,) = seen[before:]
            cases.append({"step": "AB" if "<" not in generated else "A", "kind": "constructor",
                          "input": {"question": question, "candidates": candidates, "chain": chain,
                                    "demonstrations": ranked[:5], "generated": generated},
                          "expected": {"system": instructions[0], "user": inputs[0],
                                       "prompt": prompt["text"], "prompt_ids": prompt["ids"],
                                       "step": out[0][-1]}})  # fmt: skip

    # D: demonstration ranking for the constructor (untrained E5, "query: ", 128 tokens)
    for question in qs:
        ranked = kirag_ref.rank_examplars(question)
        cases.append({"step": "D", "kind": "chain_demonstrations", "input": {"question": question},
                      "expected": {"top": ranked[: kirag_ref.num_examplars]}})  # fmt: skip

    # E: the aligner's inputs per family (the reference's collators, 256 / 128 tokens)
    from dataset.collators import BGECollator, E5Collator

    long_query = qs[-2] + "\nknowledge triples: " + ". ".join(triples[:30]) + "."
    texts = [qs[0] + "\nknowledge triples: .", long_query, triples[0], " ".join(triples), "<Lyon>"]
    for family, collator in (
        ("e5", E5Collator(bert, 256, 64)),
        ("bge", BGECollator(bert, 256, 64)),
    ):
        for text in texts:
            for side, encode, length in (
                ("query", collator.encode_query, 256),
                ("passage", collator.encode_doc, 128),
            ):
                ids = encode([text], max_length=length)["input_ids"][0].tolist()
                cases.append({"step": "E", "kind": "aligner_input",
                              "input": {"family": family, "side": side, "text": text},
                              "expected": {"ids": ids}})  # fmt: skip

    # E/C: the aligner's top 20 (ties between identical texts included)
    for i in range(16):
        question = qs[i % len(qs)]
        chain = rng.sample(triples, i % 3)
        cands = rng.sample(triples, rng.randint(3, 30))
        cands += cands[: i % 4]  # duplicates: equal scores
        indices, scores = kirag_ref.filter_candidate_triples(
            question, [[{"title": "", "text": t} for t in chain]],
            [{"title": "", "text": t} for t in cands], 20,
        )  # fmt: skip
        cases.append({"step": "CE", "kind": "aligner_top",
                      "input": {"question": question, "chain": chain, "candidates": cands},
                      "expected": {"indices": indices[0], "scores": scores[0]}})  # fmt: skip

    # C (and the whole loop): scripted 5-turn loops over documents with tied triples
    cases += record_loops(kirag_ref, FixedHits, script, seen, rng, fakes)

    # F: the reader (qa_eval.main with the AnswerGenerator)
    reader = AnswerGenerator(chat, llm, max_length=4096, max_new_tokens=32, is_chat=True)
    for i in range(24):
        ctxs = []
        for j in range(i % 5):
            person, city, job = PEOPLE[(i + j) % len(PEOPLE)]
            if (i + j) % 3 == 0:
                ctx = {
                    "title": person,
                    "sentences": [f"{person} was a {job}.", f"  Born in {city}. ", "Done."],
                }
            elif (i + j) % 3 == 1:
                ctx = {"title": person, "text": f"{person}  was born in {city}."}
            else:
                ctx = {"text": f"A text without title about {city}."}
            ctxs.append(ctx)
        generated = ["Lyon", "\n\nThe answer is: Paris.\nmore", "So the answer is Warsaw", "  \n"][
            i % 4
        ]
        question = qs[i % len(qs)]
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "run.json"
            path.write_text(json.dumps([{"question": question, "answers": ["x"], "ctxs": ctxs}]))
            script.append(generated)
            before = len(seen)
            captured = []
            original = reader.parse_generated_answers
            reader.parse_generated_answers = _capturing(original, captured)
            args = types.SimpleNamespace(save_file=str(path), k=3, batch_size=4, reader="scripted")
            with contextlib.redirect_stdout(io.StringIO()):
                qa_eval.main(args, reader)
            reader.parse_generated_answers = original
        cases.append({"step": "F", "kind": "reader",
                      "input": {"question": question, "ctxs": ctxs[:3], "generated": generated},
                      "expected": {"prompt": seen[before]["text"], "answer": captured[0]}})  # fmt: skip

    # G/H/I/J: extraction prompts (demonstrations chosen and fitted), parsing, sentence links
    cases += record_extraction(kg, script, seen, rng)

    # K: the authors' cached KG, as the loop's candidate lines
    for i in range(12):
        doc = {"id": f"k{i}", "title": f"Title {i}", "sentences": ["S one.", "S two."],
               "triples": [{"text": t, "sentence": j % 2} for j, t in enumerate(
                   ["<A; b; C>", "<A; b; C>", " <a ;b; c> ", "<x; y>", "no brackets", "<A; b; C>", "<P; q; \"R.\">", "<H|r|T>"][: 3 + i % 6])]}  # fmt: skip
        lines = kirag_ref.get_candidate_triples_from_documents([doc])
        cases.append({"step": "K", "kind": "kg_import", "input": {"entry": doc},
                      "expected": {"candidates": [[c["text"], c["reference"]] for c in lines]}})  # fmt: skip
    return {
        "reference": {"repository": REPO, "commit": COMMIT},
        "fakes": {"seed": fakes.SEED, "dimension": fakes.DIMENSION,
                  "bi_encoder": "all-MiniLM-L6-v2 tokenizer (BERT uncased)",
                  "chat_tokenizer": "SmolLM2-135M-Instruct (packaged GGUF)"},
        "pools": {"constructor": chains, "extraction": ext_pool},
        "cases": cases,
    }  # fmt: skip


def record_loops(kirag_ref, FixedHits, script, seen, rng, fakes) -> list[dict]:
    """Scripted reference loops: documents with triples (identical texts across documents and
    within a sentence), dense hits per query (ties included), the constructor's canned turns."""
    cases = []
    for n in range(12):
        docs = {}
        for d in range(6):
            person, city, job = PEOPLE[(n + d) % len(PEOPLE)]
            town, country, _ = ENTITIES[(n + 2 * d) % len(ENTITIES)]
            lines = [f"<{person}; born in; {city}>", f"<{city}; located in; {country}>",
                     f"<{person}; occupation; {job}>", f"<{town}; country; {country}>"]  # fmt: skip
            if d % 2 == 0:
                lines.append("<Lyon; located in; France>")  # the same text in several documents
            if d == 1:
                lines.append(lines[0])  # twice in one sentence: one pool entry
            docs[f"n{n}d{d}"] = {
                "id": f"n{n}d{d}", "title": person, "text": f"About {person} and {town}.",
                "triples": [{"text": t, "sentence": k % 2} for k, t in enumerate(lines)],
            }  # fmt: skip
        question = f"Which country is the birthplace of {PEOPLE[n % len(PEOPLE)][0]} in?"
        turns = [GENERATIONS[(n + t) % len(GENERATIONS)] for t in range(5)]
        if n % 3 == 0:
            turns[2] = ""  # an empty step
        if n % 4 == 1:
            turns = [f"<{PEOPLE[n % 8][0]}; born in; {PEOPLE[n % 8][1]}>", "<Lyon; located in; France>",
                     "<So the answer is: France>", "", ""]  # fmt: skip
        ids = list(docs)
        hits = {}

        def hits_for(query, ids=ids, hits=hits, tied=n % 2 == 0):
            if query not in hits:
                order = sorted(ids, key=lambda d: (hash_score(query, d), d), reverse=True)
                scores = [round(hash_score(query, d), 2) for d in order]
                if tied:  # tied dense scores
                    scores = [round(s, 1) for s in scores]
                hits[query] = [[d, s] for d, s in zip(order, scores, strict=True)][:4]
            return hits[query]

        # the queries the loop will make (turn 1: the question; then question + " " + step)
        retriever = kirag_ref.retriever = FixedHits(docs, _LazyHits(hits_for))
        kirag_ref.kg_generator.cached_kg_triples = {d: docs[d] for d in docs}
        snapshots = []
        original = kirag_ref.update_reasoning_chains_triples_based_on_f1_score

        def observe(id2score, id2triple, step_list, original=original, snapshots=snapshots, **kw):
            out = original(id2score, id2triple, step_list, **kw)
            snapshots.append([[t["reference"][0], t["reference"][1], t["text"], id2score[i]]
                              for i, t in ((i, id2triple[i]) for i in sorted(id2score, key=lambda x: id2score[x], reverse=True))])  # fmt: skip
            return out

        kirag_ref.update_reasoning_chains_triples_based_on_f1_score = observe
        script.extend(turns)
        before = len(seen)
        with contextlib.redirect_stdout(io.StringIO()):
            chains_out, doc_scores = kirag_ref.retrieve(question)
        del kirag_ref.update_reasoning_chains_triples_based_on_f1_score
        used = len(seen) - before
        del script[: len(script)]  # turns not used (the loop stopped)
        cases.append({"step": "C", "kind": "loop",
                      "input": {"question": question, "documents": list(docs.values()),
                                "hits": dict(hits), "generated": turns[:used]},
                      "expected": {"prompts": [s["text"] for s in seen[before:]],
                                   "chain": chains_out[0], "pool_after_turn": snapshots,
                                   "documents": [[d, s] for d, s in doc_scores.items()]}})  # fmt: skip
        del retriever
    return cases


def _capturing(parse, captured: list):
    """`parse`, keeping what it returns in `captured`."""

    def wrapped(texts):
        answers = parse(texts)
        captured.extend(answers)
        return answers

    return wrapped


class _LazyHits(dict):
    def __init__(self, make):
        super().__init__()
        self.make = make

    def __getitem__(self, query):
        return self.make(query)


def hash_score(query: str, doc_id: str) -> float:
    import hashlib

    return int(hashlib.sha256(f"{query}|{doc_id}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def record_extraction(kg, script, seen, rng) -> list[dict]:
    cases = []
    documents = []
    for i in range(14):
        person, city, job = PEOPLE[(i * 3) % len(PEOPLE)]
        town, country, _ = ENTITIES[i % len(ENTITIES)]
        if i % 2:
            doc = {"id": f"x{i}", "title": person,
                   "sentences": [f"{person} was a {job}. ", f" Born in {city}, e.g. near {town}.", f"{town} is in {country}."]}  # fmt: skip
        else:
            doc = {"id": f"x{i}", "title": person,
                   "text": f"{person} was a {job} born in {city}. Mr. {person.split()[-1]} lived in {town}, {country}. " * (1 + i % 3)}  # fmt: skip
        documents.append(doc)
    outputs = [
        f"<{PEOPLE[k % 8][0]}; born in; {PEOPLE[k % 8][1]}>\n<{PEOPLE[k % 8][0]}; occupation; {PEOPLE[k % 8][2]}>\n"
        f"<head entity; relation; tail entity>\n<{ENTITIES[k % 12][0]};country;{ENTITIES[k % 12][1]}.>\n"
        f"(not; a; triple) <two; parts> <\"Quoted\"; says; \"x\"> <{PEOPLE[k % 8][0]}; born in; {PEOPLE[k % 8][1]}>\n"
        f"<multi\nline; triple; here> <was; in; Born>"
        for k in range(14)
    ]  # fmt: skip
    # I/G: full extraction path at the reference's 4096 context
    import copy

    for start in range(0, 14, 4):
        batch = copy.deepcopy(documents[start : start + 4])
        script.extend(outputs[start : start + 4])
        before = len(seen)
        with contextlib.redirect_stdout(io.StringIO()):
            done = kg.generate_kg_triples_wo_cache(batch)
        for k, doc in enumerate(done):
            cases.append({"step": "GIJ", "kind": "extraction",
                          "input": {"document": documents[start + k], "generated": outputs[start + k]},
                          "expected": {"ranked": doc["ranked_examplars_indices"][:5],
                                       "prompt": seen[before + k]["text"],
                                       "triples": [[t["text"], t["sentence"]] for t in doc["triples"]]}})  # fmt: skip
    # H: fitting the demonstrations to a context (smaller contexts force the drops)
    for i, doc in enumerate(documents):
        for limit in (4096, 700, 420, 300, 120):
            ranked = kg.rank_examplars([copy.deepcopy(doc)])[0]
            kg.max_length = limit
            instructions, inputs = kg.get_documents_inputs([ranked])
            kg.max_length = 4096
            cases.append({"step": "H", "kind": "extraction_fit",
                          "input": {"document": doc, "context": limit},
                          "expected": {"system": instructions[0], "user": inputs[0]}})  # fmt: skip
            if i > 6:
                break
    # J: parsing and sentence links on more outputs
    for i in range(40):
        doc = copy.deepcopy(documents[i % len(documents)])
        text = outputs[(i * 5) % len(outputs)]
        text = text if i % 3 else text.replace("\n", " ")
        parsed = kg.parse_generator_outputs([doc], [text])[0]
        cases.append({"step": "J", "kind": "extraction_parse",
                      "input": {"document": documents[i % len(documents)], "generated": text},
                      "expected": {"triples": [[t["text"], t["sentence"]] for t in parsed["triples"]]}})  # fmt: skip
    return cases


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    data = record(Path(argv[0]).resolve())
    text = json.dumps(data, ensure_ascii=False, indent=0, sort_keys=True) + "\n"
    if argv[1].endswith(".gz"):
        import gzip

        with open(argv[1], "wb") as raw, gzip.GzipFile("", "wb", fileobj=raw, mtime=0) as fh:
            fh.write(text.encode("utf-8"))  # no name, no time: byte-identical reruns
    else:
        Path(argv[1]).write_text(text, encoding="utf-8")
    counts: dict[str, int] = {}
    for case in data["cases"]:
        counts[case["step"]] = counts.get(case["step"], 0) + 1
    print(f"{len(data['cases'])} cases: {counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
