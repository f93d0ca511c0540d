"""The espeak-ng phonemiser as its own process: one JSON request a line on stdin (``{"voice", "text"}``), one JSON
answer a line on stdout (``{"clauses": [[phonemes, terminator, end_of_sentence], ...]}`` or ``{"error"}``).

espeak-ng and piper-tts (which ships it with its data, ``piper.espeakbridge``) are GPL-3.0-or-later; Studio is
Apache-2.0 and talks to them only through this pipe, as one program to another.
Run as ``python -m studio.ml.voice.espeak_process``.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path


def main() -> int:
    try:  # the extension alone, not the piper package (which would import onnxruntime for nothing)
        spec = importlib.util.find_spec("piper")
        if spec is None or not spec.submodule_search_locations:
            raise ImportError("piper-tts is not installed")
        folder = Path(spec.submodule_search_locations[0])
        library = next(folder.glob("espeakbridge*.so"), None) or next(folder.glob("espeakbridge*.pyd"))
        loader = importlib.util.spec_from_file_location("espeakbridge", library)
        bridge = importlib.util.module_from_spec(loader)
        loader.loader.exec_module(bridge)
        bridge.initialize(str(folder / "espeak-ng-data"))
    except Exception as exc:  # report, then answer every request with the reason
        problem = f"the phonemiser (piper-tts with espeak-ng) is not installed or broken: {exc}"
        bridge = None
    voice = ""
    for line in sys.stdin:
        try:
            request = json.loads(line)
            if bridge is None:
                raise RuntimeError(problem)
            if request["voice"] != voice:
                bridge.set_voice(request["voice"])
                voice = request["voice"]
            answer = {"clauses": [list(c) for c in bridge.get_phonemes(str(request["text"]))]}
        except Exception as exc:
            answer = {"error": str(exc)}
        sys.stdout.write(json.dumps(answer, ensure_ascii=False) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
