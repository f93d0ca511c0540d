"""Voice-over: a script spoken by an offline voice (a Piper neural voice on onnxruntime, or the classic Flite
synthesiser), timed line by line, and the finished ad spot (copy + voice-over + a music bed)."""

from __future__ import annotations

from studio.core.modality import Modality, Ref

MODALITY = Modality(
    name="voice",
    label="Voice-over",
    title="Voice",
    icon="voice",
    workspace=Ref("studio.ui.workspaces.voice:VoiceWorkspace"),
    tasks=(Ref("studio.ml.tasks.voice"), Ref("studio.ml.tasks.spot")),
    cli=(Ref("studio.cli.voice"),),
    default_model="piper-joe",
    speed_probe=Ref("studio.ml.tasks.voice:speed_probe"),
    opens=(".spot",),
    exports=("WAV/FLAC/OGG voice-overs with the recipe", "ad spots: audio, a project file, the copy as text"),
    model_files=("*.onnx", "*.flitevox"),
    runtimes={"piper-voice": Ref("studio.ml.runtime.voice:PIPER"), "flite-voice": Ref("studio.ml.runtime.voice:FLITE")},
    describe=Ref("studio.ml.tasks.voice:describe"),
    takes_text=True,
)
