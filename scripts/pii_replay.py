"""Replay the PII path of `earshot eval --pii` on recorded ASR output, in seconds instead of minutes.

Not part of the product: the development harness behind the stop-31 figures in
docs/deid-pipeline.md. `record` synthesises the evaluation's planted-PII sentences for a seed
(optionally through the telephone channel), runs `DeidPipeline.process` with the real models
and caches every transcript tiny.en and Whisper base produced; `replay` runs the same
`DeidPipeline.process` again on the cached transcripts (the voice change replaced by the
identity, since it never brings silenced speech back) and prints the listener recall per PII
group and the share of ordinary speech still audible, as `earshot eval --pii` measures them.
A rule change that makes the pipeline ask Whisper base about other snippets is served from
the per-snippet cache, or runs the model where a snippet was never heard.

    .venv/bin/python scripts/pii_replay.py record --telephone 0 1 2
    .venv/bin/python scripts/pii_replay.py replay --telephone 0 1 2 --tag new
    PYTHONPATH=/tmp/old/src .venv/bin/python scripts/pii_replay.py replay --telephone 0 1 2 --tag old
    .venv/bin/python scripts/pii_replay.py diff --telephone old new 0 1 2
    .venv/bin/python scripts/pii_replay.py misses --telephone --tag new 0 1 2   # what is still heard
    .venv/bin/python scripts/pii_replay.py record --telephone --compute-type float32 0 1 2   # probe

`--compute-type` decodes with other CTranslate2 weights than the product's int8 (both models) and
keeps its own cache beside the int8 one (`pii-replay/float32`); its rows are written there too.

The cache lives in ~/.cache/earshot/pii-replay (owner-only): the synthetic espeak-ng sentences,
their planted made-up values and transcripts, never real speech; it is read back only from there.
The figures differ from `earshot eval` by the voice change's own near-silent samples (within
about 0.3 points of ordinary speech audible on telephone-band speech).
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from earshot.evaluation import pii_eval
from earshot.evaluation.manifest import telephone_band
from earshot.pipeline.deid import DeidPipeline
from earshot.pipeline.second_opinion import SecondOpinion
from earshot.pipeline.types import Audio, Transcript

CACHE = Path.home() / ".cache" / "earshot" / "pii-replay"
GROUPS = {t: "digits" for t in pii_eval.DIGIT_TYPES} | {
    "EMAIL": "email", "NAME": "name", "ADDRESS": "address", "DATE_OF_BIRTH": "dob",
}  # fmt: skip
ORDER = ("digits", "email", "name", "address", "dob")


def _key(audio: Audio) -> str:
    return hashlib.sha256(np.ascontiguousarray(audio, np.float32).tobytes()).hexdigest()


class CachedAsr:
    """`transcribe_batch` from the cache (whole batch, else snippet by snippet), else the model."""

    def __init__(self, load: Callable[[], Any], cache: dict[tuple[str, ...], list[Transcript]]) -> None:
        self.load, self.cache, self.model, self.misses = load, cache, None, 0
        self.heard: list[Transcript] = []  # what was asked since the last `clear`, for `misses`

    def transcribe_batch(self, audios: Sequence[Audio]) -> list[Transcript]:
        out = self._transcribe_batch(audios)
        self.heard.extend(out)
        return out

    def _transcribe_batch(self, audios: Sequence[Audio]) -> list[Transcript]:
        key = tuple(_key(a) for a in audios)
        if key in self.cache:
            return self.cache[key]
        if all((k,) in self.cache for k in key):
            return [self.cache[(k,)][0] for k in key]
        self.misses += 1
        if self.model is None:
            self.model = self.load()
        out = list(self.model.transcribe_batch(audios))
        self.cache[key] = out
        for k, t in zip(key, out, strict=True):
            self.cache.setdefault((k,), [t])
        return out

    def transcribe(self, audio: Audio) -> Transcript:
        return self.transcribe_batch([audio])[0]


class SameVoice:
    def anonymise(self, audio: Audio, rng: np.random.Generator) -> Audio:
        return np.asarray(audio, np.float32).copy()


COMPUTE_TYPE = "int8"  # the product's; `--compute-type` changes it for both models


def _options() -> Any:
    from earshot.pipeline.asr import AsrOptions

    return AsrOptions(compute_type=COMPUTE_TYPE)


def _tiny() -> Any:
    from earshot.pipeline.asr import get_transcriber

    return get_transcriber(options=_options())


def _base() -> Any:
    from earshot.pipeline.second_opinion import default_second_opinion

    opinion = default_second_opinion(asr_options=_options())
    assert opinion is not None
    return opinion.transcriber


def _marked(t: Transcript) -> str:
    """The words of `t`, each the ASR was unsure of (probability under 0.5) marked with "?"."""
    return " ".join(w.text.strip() + ("?" if w.probability < 0.5 else "") for w in t.words)


def run(seed: int, telephone: bool, record: bool) -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
    """(recall per group as (silenced, planted) and "audible", per-sentence rows) for one seed."""
    CACHE.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = CACHE / f"{'tel' if telephone else 'full'}_{seed}.pkl"
    if record or not path.exists():
        jobs = []
        for v_i, voice in enumerate(pii_eval.DEFAULT_VOICES):
            for item in pii_eval.build_sentences(random.Random(seed * 1000 + v_i), 3):
                audio, extents = pii_eval.synthesize_parts(item, voice)
                jobs.append((item.type, item.say, telephone_band(audio) if telephone else audio, extents))
        data: dict[str, Any] = {"jobs": jobs, "tiny": {}, "base": {}}
    else:
        data = pickle.loads(path.read_bytes())  # noqa: S301 - this script's own cache
    tiny, base = CachedAsr(_tiny, data["tiny"]), CachedAsr(_base, data["base"])
    pipe = DeidPipeline(
        transcriber=tiny, anonymiser=SameVoice(),  # type: ignore[arg-type]
        second_opinion=SecondOpinion(lambda: base), voice_workers=1,  # type: ignore[arg-type, return-value]
    )  # fmt: skip
    hits: dict[str, list[bool]] = defaultdict(list)
    other_s = audible_s = 0.0
    rows = []
    for typ, said, audio, extents in data["jobs"]:
        tiny.heard.clear()
        base.heard.clear()
        snippets = pipe.process(audio, rng=np.random.default_rng(0))
        pieces = [(s.start_s, s.audio) for s in snippets]
        value = extents.get("value")
        silenced = pii_eval.silenced_share(audio, value, pieces) if value else None
        if silenced is not None:
            hits[GROUPS[typ]].append(silenced >= 0.9)
        o = a = 0.0
        for role, extent in extents.items():
            if role != "value":
                s = pii_eval._speech_s(audio, extent)
                o, a = o + s, a + s * (1.0 - pii_eval.silenced_share(audio, extent, pieces))
        other_s, audible_s = other_s + o, audible_s + a
        heard = (" / ".join(_marked(t) for t in m.heard) for m in (tiny, base))
        rows.append((typ, said, silenced, o, a, " ".join(s.transcript for s in snippets), *heard))
    if record or tiny.misses or base.misses:
        path.write_bytes(pickle.dumps(data))
    result: dict[str, Any] = {g: (sum(hits[g]), len(hits[g])) for g in ORDER}
    result["audible"] = audible_s / other_s
    return result, rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["record", "replay", "diff", "misses"])
    ap.add_argument("args", nargs="+", help="seeds; for diff: TAG_A TAG_B seeds...")
    ap.add_argument("--telephone", action="store_true", help="through the 8 kHz channel")
    ap.add_argument("--tag", default="latest", help="name for this replay's per-sentence rows")
    ap.add_argument("--compute-type", default="int8", help="CTranslate2 weights of both models (probe)")
    opts = ap.parse_args()
    global CACHE, COMPUTE_TYPE
    if opts.compute_type != COMPUTE_TYPE:
        CACHE, COMPUTE_TYPE = CACHE / opts.compute_type, opts.compute_type
    band = "tel" if opts.telephone else "full"
    if opts.mode == "diff":
        a_tag, b_tag, *seeds = opts.args
        for seed in seeds:
            a = pickle.loads((CACHE / f"rows_{band}_{seed}_{a_tag}.pkl").read_bytes())  # noqa: S301
            b = pickle.loads((CACHE / f"rows_{band}_{seed}_{b_tag}.pkl").read_bytes())  # noqa: S301
            for x, y in zip(a, b, strict=True):
                if x[2] is not None and (x[2] >= 0.9) != (y[2] >= 0.9):
                    print(f"seed {seed} {x[0]}: {x[1]} | silenced {x[2]:.2f} -> {y[2]:.2f}")
                    print(f"    {x[5]}\n    {y[5]}")
        return
    if opts.mode == "misses":  # values a listener can still hear, and what both models heard
        for seed in opts.args:
            rows = pickle.loads((CACHE / f"rows_{band}_{seed}_{opts.tag}.pkl").read_bytes())  # noqa: S301
            for typ, said, silenced, _o, _a, out, *heard in rows:
                if silenced is not None and silenced < 0.9:
                    print(f"seed {seed} {typ}: {said} | silenced {silenced:.2f}\n    out:  {out}")
                    for name, text in zip(("tiny", "base"), heard, strict=False):
                        print(f"    {name}: {text}")
        return
    total: dict[str, list[int]] = {g: [0, 0] for g in ORDER}
    audible = []
    for seed in map(int, opts.args):
        result, rows = run(seed, opts.telephone, opts.mode == "record")
        (CACHE / f"rows_{band}_{seed}_{opts.tag}.pkl").write_bytes(pickle.dumps(rows))
        line = " ".join(f"{g} {result[g][0]}/{result[g][1]}" for g in ORDER)
        print(f"{band} seed {seed}: {line}  ordinary speech audible {result['audible']:.4f}", flush=True)
        for g in ORDER:
            total[g][0] += result[g][0]
            total[g][1] += result[g][1]
        audible.append(result["audible"])
    pooled = " ".join(f"{g} {n}/{d} = {n / d:.3f}" for g, (n, d) in total.items() if d)
    print(f"pooled: {pooled}  audible (mean over seeds) {np.mean(audible):.4f}")


if __name__ == "__main__":
    main()
