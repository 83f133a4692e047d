"""New music from a checkpoint: sampling (temperature, top-k/p, primer, genre, length) with the
grammar that keeps every event sequence decodable, piano-roll sampling, and the files a
musician opens (MIDI, WAV, PNG). Shipped models are found by `etude.models.pretrained`."""
