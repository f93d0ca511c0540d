"""Ad copy: a language model (SmolLM2-135M-Instruct in the project's own Llama) with LoRA brand voices."""

from __future__ import annotations

from studio.core.modality import Family, Modality, Ref, TrainChoice, Training

BASE_LANGUAGE_MODEL = "smollm2-135m-instruct"
#: The bundled self-trained adapter (rejection-sampling fine-tuning of the base on its own best practice lines):
#: what the Copy workspace and `studio generate copy` write with unless told otherwise.
DEFAULT_COPY_MODEL = "copy-ads"


def train_command(choice: TrainChoice) -> list[str]:
    base = ["--base", choice.base] if choice.base else []
    return ["copy", *base, *choice.common_args(threads=False)]  # copy training reads the thread setting itself


MODALITY = Modality(
    name="copy",
    label="Ad copy",
    title="Copy",
    icon="copy",
    workspace=Ref("studio.ui.workspaces.copy:CopyWorkspace"),
    tasks=(Ref("studio.ml.tasks.copy"),),
    cli=(Ref("studio.cli.copy"), Ref("studio.cli.copy_train"), Ref("studio.cli.copy_lm")),
    default_model=DEFAULT_COPY_MODEL,
    speed_probe=Ref("studio.ml.tasks.copy:speed_probe"),
    opens=(".txt", ".md", ".csv", ".json"),
    exports=("CSV for ad tools", "plain text and Markdown", "JSON with the recipe"),
    model_files=("*.gguf", "*.safetensors"),
    runtimes={"llama": Ref("studio.ml.runtime.ort_lm:ADAPTER"), "llama-lora": Ref("studio.ml.runtime.lora_lm:ADAPTER")},
    step_adapters={"llama": Ref("studio.ml.runtime.ort_lm:DecoderSteps")},
    export_checks={"llama": Ref("studio.ml.eval.perplexity:export_quality"),
                   "llama-lora": Ref("studio.ml.eval.perplexity:export_quality")},
    training=Training(
        families=(Family("LoRA brand voice on the language model", "lora", "llama"),),
        command=train_command,
        inspector=Ref("studio.ml.train.copy_preflight:inspect"),
        estimator=Ref("studio.ml.train.copy_preflight:estimate"),
        data_hint="a TXT or CSV file, one example a line",
        sample_hint="Ad-copy runs show their train and validation loss; the card lists held-out perplexity.",
        name_hint="my-brand-voice",
        base_tooltip="The language model the brand-voice adapter is trained on (and used with)",
        first_base=BASE_LANGUAGE_MODEL,
        from_scratch=False,
        needs_base="No language model installed: run set-up or import a GGUF model (Models) to train a brand "
        "voice on it.",
        exportable=False,  # an adapter's only graph is the CPU's int4 one (`studio export onnx NAME --int4`)
    ),
    prepares=True,
)
