"""Opt-in synth speed-ups for Python cdktf/cdktn apps; nothing happens until enable() is called."""
