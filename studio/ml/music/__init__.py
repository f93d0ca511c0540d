"""Music generation: melody (the music Transformer's tokens, constraints and sampler, or rules), harmony, drums
and arrangement."""
