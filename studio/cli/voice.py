"""``studio generate voice`` (a script to a voice-over), ``studio generate spot`` (a finished ad spot: audio, project
file and the copy as text) and ``studio bench voice`` (:mod:`studio.ml.bench.voice`)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from studio.core.errors import BadInputError
from studio.core.safe_write import write_atomic
from studio.core.voice import VoiceRequest


def _script(args: argparse.Namespace) -> str:
    if (args.text is None) == (args.file is None):
        raise BadInputError("give the words with --text or --file (one of them)")
    if args.text is not None:
        return args.text.replace("\\n", "\n")
    path = Path(args.file).expanduser()
    if path.suffix.lower() in (".csv", ".json", ".md"):
        from studio.core.copy_export import import_ads

        ads = import_ads(path).ads
        if not ads:
            raise BadInputError(f"{path.name} has no ad in it")
        if not 1 <= args.variant <= len(ads):
            raise BadInputError(f"{path.name} has {len(ads)} ads: --variant 1 to {len(ads)}")
        return "\n".join(line for lines in ads[args.variant - 1].values() for line in lines)
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInputError(f"{path.name} cannot be read as text ({exc})") from None


def _voice_request(args: argparse.Namespace, text: str) -> VoiceRequest:
    return VoiceRequest(text=text, speed=args.speed, pitch=args.pitch, line_pause=args.line_pause,
                        sentence_pause=args.sentence_pause, skip_unsayable=args.skip_unsayable, seed=args.seed)


def run_voice(args: argparse.Namespace) -> int:
    from studio.cli.console import make_resources, run_in_console
    from studio.core.formats.audio import write_audio

    resources = make_resources(args.device)
    request = _voice_request(args, _script(args))
    speech = run_in_console(request.spec(args.voice), quiet=args.quiet, resources=resources)
    out = Path(args.out) if args.out else resources.settings.resolved_output_dir / f"voice-{args.seed}.wav"
    recipe = speech.recipe if resources.settings.write_metadata else None
    write_audio(out, speech.audio, speech.rate, recipe)
    print(f"wrote {out} ({speech.duration:.2f} s, {speech.recipe['model']}, "
          f"{speech.recipe['realtime_factor']:.1f}x real time)")
    for line in speech.lines:
        print(f"  {line.start:6.2f}-{line.end:6.2f} s  line {line.number}: {line.text[:70]}")
    return 0


def run_spot(args: argparse.Namespace) -> int:
    from studio.cli.console import make_resources, run_in_console
    from studio.core.music_request import MusicRequest
    from studio.core.spot import SpotRequest, export_spot

    resources = make_resources(args.device)
    music = MusicRequest(style=args.style, key=args.key, bpm=args.bpm, seed=args.music_seed)
    request = SpotRequest(voice=_voice_request(args, _script(args)), voice_model=args.voice, music=music,
                          music_model=args.music_model, music_file=args.music or "", loop_music=args.loop_music,
                          length=args.length, loudness=args.loudness, seed=args.seed)
    started = time.perf_counter()
    result = run_in_console(request.spec(), quiet=args.quiet, resources=resources)
    seconds = time.perf_counter() - started
    out = Path(args.out) if args.out else resources.settings.resolved_output_dir / f"spot-{args.seed}.wav"
    written = export_spot(out, result, request, resources.settings.write_metadata)
    recipe = result.recipe
    print(f"rendered a {result.duration:.1f} s spot in {seconds:.2f} s: {recipe['lufs']:.2f} LUFS "
          f"(target {recipe['target_lufs']:g}), true peak {recipe['true_peak_dbtp']:.2f} dBTP, voice "
          f"{recipe['voice_over_bed_db']:.1f} dB above the music while it speaks")
    for path in written:
        print(f"wrote {path}")
    return 0


def run_bench(args: argparse.Namespace) -> int:
    from studio.cli.console import make_resources, run_in_console
    from studio.ml.bench.voice import bench_voice, markdown

    resources = make_resources(args.device)
    installed = [e.name for e in resources.store.entries() if e.modality == "voice"]
    report = bench_voice(lambda spec: run_in_console(spec, quiet=True, resources=resources), installed, args.voice,
                         args.repeats, resources.device, resources.cpu_threads, args.spot_voice)
    text = markdown(report)
    print(text)
    if args.json:
        write_atomic(Path(args.json), json.dumps(report, indent=2) + "\n", "the benchmark")
    if args.md:
        write_atomic(Path(args.md), text, "the benchmark table")
    return 0


def _voice_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--text", default=None, help="the words (\\n starts a new line)")
    parser.add_argument("--file", default=None, help="a text file, or an ad CSV from `studio generate copy`")
    parser.add_argument("--variant", type=int, default=1, help="with an ad CSV: which ad (from 1)")
    parser.add_argument("--voice", default="", help="voice name (default: the default voice; see `studio models "
                        "list`)")
    parser.add_argument("--speed", type=float, default=1.0, help="1 is the voice's own pace (0.5-2)")
    parser.add_argument("--pitch", type=float, default=0.0, help="semitones up or down (-6 to 6)")
    parser.add_argument("--line-pause", type=float, default=0.4, help="seconds between lines")
    parser.add_argument("--sentence-pause", type=float, default=0.15, help="seconds between sentences")
    parser.add_argument("--skip-unsayable", action="store_true",
                        help="leave out characters the voice cannot say (they are listed) instead of stopping")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="audio file (.wav, .flac or .ogg)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None)
    parser.add_argument("--quiet", action="store_true")


def add_commands(groups: dict[str, argparse._SubParsersAction]) -> None:
    voice = groups["generate"].add_parser("voice", help="a voice-over of a script (WAV/FLAC/OGG with the recipe)",
                                          description="Speak a script with an offline voice; prints each line's "
                                          "timing.")
    _voice_arguments(voice)
    voice.set_defaults(func=run_voice)

    spot = groups["generate"].add_parser(
        "spot", help="a finished 15 or 30 s ad spot: voice-over, music bed, loudness preset",
        description="Render an ad spot: the copy spoken by a voice over a music bed fitted in whole bars, the music "
        "ducking under the voice, -16 LUFS online or -23 LUFS broadcast. Writes the audio, NAME.spot (reopens the "
        "spot in the Voice workspace) and NAME.txt (the copy).")
    _voice_arguments(spot)
    spot.add_argument("--length", type=int, choices=(15, 30), default=30, help="seconds")
    spot.add_argument("--loudness", choices=("online", "broadcast"), default="online",
                      help="online: -16 LUFS; broadcast: -23 LUFS (EBU R128)")
    spot.add_argument("--style", default="upbeat-jingle", help="music style of a new bed")
    spot.add_argument("--key", default=None)
    spot.add_argument("--bpm", type=float, default=None, help="tempo of a new bed (nudged to fill whole bars)")
    spot.add_argument("--music-seed", type=int, default=0)
    spot.add_argument("--music-model", default="", help="music model ('rules' for the rule-based melody)")
    spot.add_argument("--music", default=None, metavar="CLIP", help="use this clip (WAV/FLAC/OGG) as the bed")
    spot.add_argument("--loop-music", action="store_true", help="repeat a clip shorter than the spot")
    spot.set_defaults(func=run_spot)

    bench = groups["bench"].add_parser("voice", help="real-time factor of each installed voice; a 30 s spot's "
                                       "render time, loudness and voice-over-music margin")
    bench.add_argument("--voice", action="append", default=[], help="a voice to time (repeatable; default: all)")
    bench.add_argument("--spot-voice", default="", help="the voice of the timed spots (default: the first timed)")
    bench.add_argument("--repeats", type=int, default=3, help="timed runs of each job (0: voices once, no spots)")
    bench.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None)
    bench.add_argument("--json", default=None)
    bench.add_argument("--md", default=None)
    bench.set_defaults(func=run_bench)
