"""Text to Piper phonemes through the espeak-ng child process (:mod:`studio.ml.voice.espeak_process`), grouped
into sentences the way Piper's voices were trained: each clause's IPA, its punctuation kept, decomposed into
codepoints (NFD), language-switch flags removed."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import unicodedata

from studio.core.errors import ModelFileError

LANGUAGE_FLAG = re.compile(r"\([^)]+\)")


class Phonemiser:
    """One long-lived child process, shared by threads (one request at a time)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None

    def _start(self) -> subprocess.Popen[str]:
        if self._process is None or self._process.poll() is not None:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "studio.ml.voice.espeak_process"], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, encoding="utf-8", bufsize=1)
        return self._process

    def clauses(self, voice: str, text: str) -> list[tuple[str, str, bool]]:
        """espeak-ng's (phonemes, terminator, end of sentence) for each clause of ``text``."""
        with self._lock:
            process = self._start()
            assert process.stdin is not None and process.stdout is not None
            try:
                process.stdin.write(json.dumps({"voice": voice, "text": text}, ensure_ascii=False) + "\n")
                process.stdin.flush()
                answer = json.loads(process.stdout.readline() or "{}")
            except (OSError, ValueError) as exc:
                self.close()
                raise ModelFileError(f"the phonemiser stopped ({exc}); run set-up again") from None
        if "error" in answer or "clauses" not in answer:
            raise ModelFileError(str(answer.get("error") or "the phonemiser gave no answer; run set-up again"))
        return [(str(p), str(t), bool(end)) for p, t, end in answer["clauses"]]

    def sentences(self, voice: str, text: str) -> list[list[str]]:
        """Phonemes (codepoints) of each sentence of ``text``, as Piper's own phonemiser groups them."""
        sentences: list[list[str]] = []
        current: list[str] = []
        for phonemes, terminator, end in self.clauses(voice, text):
            phonemes = LANGUAGE_FLAG.sub("", phonemes) + terminator
            if terminator in (",", ":", ";"):
                phonemes += " "
            current.extend(unicodedata.normalize("NFD", phonemes))
            if end:
                sentences.append(current)
                current = []
        return [*sentences, current] if current else sentences

    def close(self) -> None:
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
            self._process.wait()
            self._process = None
