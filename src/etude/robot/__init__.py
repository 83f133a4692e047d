"""What a given robot can play: robot profiles (keyboard range, polyphony, hands and their span,
fingers, restrike time, velocity range, note rate), checking a piece against one, adapting a
piece until it fits, and assigning every note to a hand and finger. Pure functions on notes in
seconds; generation (etude.generation.constraints) and performance build on them."""
