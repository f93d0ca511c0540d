"""Music generation: melody (model or rules), harmony, drums and arrangement."""
