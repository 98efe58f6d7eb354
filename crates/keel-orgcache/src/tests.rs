//! Unit tests of the internals: reverse index, message encoding, config.
