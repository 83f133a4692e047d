"""Sound and pictures of a piece: the SoundFont player (symusic's synthesizer over a General MIDI
SoundFont), rendering to WAV and arrays, spectrograms and piano-roll images. Depends on nothing
else in étude but errors and paths."""
