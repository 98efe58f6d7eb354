//! Unit tests of the smoke checks and the Prometheus reader.
