"""Playing music in real time: drift-free scheduling of note events to MIDI ports, JSON lines,
OSC or a TCP server, with every note released on any stop; robot hands and fingers on each
event; call and response with a player."""
