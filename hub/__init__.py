"""The running hub: settings, the stream worker, the case store, the CLI and the embedded broker."""
