"""Playing pieces in real time: drift-free scheduling of note events to MIDI ports or JSON lines,
with every note released on any stop."""
