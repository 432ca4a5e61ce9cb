"""The app: settings files, stack assembly, synth with its all-or-nothing output, CLI helpers."""
