//! Tests for rate.
