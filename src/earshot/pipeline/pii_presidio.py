"""Presidio's pattern recognizers, run fully offline over normalised transcript text.

Presidio normally loads a trained spaCy model (downloading it if missing) and its e-mail
recognizer asks `tldextract`, which fetches the public-suffix list from the network. Here
the NLP engine is a blank English spaCy pipeline saved once to a local cache folder, and
suffixes come from the snapshot bundled with `tldextract` (`suffix_list_urls=()`).
Only pattern/checksum recognizers are registered: no NER model exists, none is needed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

# Presidio entity -> Earshot PII type
ENTITY_TYPES: dict[str, str] = {
    "CREDIT_CARD": "CARD",
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "US_SSN": "SSN",
    "UK_NINO": "SSN",
    "IBAN_CODE": "ACCOUNT",
    "UK_POSTCODE": "ADDRESS",
    "DATE_TIME": "DATE",
}
MIN_SCORE = 0.3
_lock = threading.Lock()


@dataclass(frozen=True)
class PresidioHit:
    """A character span of the analysed text, with Earshot type and Presidio score."""

    start: int
    end: int
    type: str
    score: float


@cache
def suffix_extractor() -> Any:
    """A tldextract extractor that uses only its bundled public-suffix snapshot."""
    import tldextract

    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def is_public_suffix_domain(domain: str) -> bool:
    """True if `domain` ends in a known public suffix and has a name before it."""
    res = suffix_extractor()(domain)
    return bool(res.suffix) and bool(res.domain)


def blank_model_dir() -> Path:
    """Folder holding a saved blank English spaCy pipeline, created on first use (no network)."""
    import spacy

    base = os.environ.get("EARSHOT_SPACY_BLANK_DIR")
    if base:
        target = Path(base)
    else:
        cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        target = cache_home / "earshot" / f"spacy-blank-en-{spacy.__version__}"
    if (target / "config.cfg").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".blank-en-", dir=target.parent))
    try:
        spacy.blank("en").to_disk(tmp / "model")
        try:
            os.replace(tmp / "model", target)
        except OSError:
            if not (target / "config.cfg").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


@cache
def analyzer() -> Any:
    """The Presidio AnalyzerEngine with offline pattern recognizers (built once per process)."""
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import SpacyNlpEngine
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        DateRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        PhoneRecognizer,
        UkNinoRecognizer,
        UkPostcodeRecognizer,
        UsSsnRecognizer,
    )

    class OfflineEmailRecognizer(EmailRecognizer):
        """EmailRecognizer whose domain check never touches the network."""

        def validate_result(self, pattern_text: str) -> bool:
            return is_public_suffix_domain(pattern_text.rpartition("@")[2])

    engine = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": str(blank_model_dir())}])
    registry = RecognizerRegistry(supported_languages=["en"])
    for rec in (
        CreditCardRecognizer(),
        OfflineEmailRecognizer(),
        UsSsnRecognizer(),
        UkNinoRecognizer(),
        IbanRecognizer(),
        UkPostcodeRecognizer(),
        DateRecognizer(),
        PhoneRecognizer(supported_regions=("US", "GB", "IE", "CA", "AU", "IN")),
    ):
        registry.add_recognizer(rec)
    return AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=["en"])


def analyze(text: str) -> list[PresidioHit]:
    """Presidio hits in `text` with a score of at least MIN_SCORE, mapped to Earshot types."""
    if not text.strip():
        return []
    engine = analyzer()
    with _lock:  # the spaCy pipeline is not documented as thread-safe
        results = engine.analyze(text=text, language="en", entities=list(ENTITY_TYPES))
    return [
        PresidioHit(r.start, r.end, ENTITY_TYPES[r.entity_type], float(r.score))
        for r in results
        if r.entity_type in ENTITY_TYPES and r.score >= MIN_SCORE
    ]
