//! Tests for format.
