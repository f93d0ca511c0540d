"""Language models for ad copy: GGUF import (:mod:`.gguf_loader`), tokenizer (:mod:`.tokenizer`), the loaded
model with prefill/decode (:mod:`.lm`) and the streaming loop (:mod:`.generate`)."""
