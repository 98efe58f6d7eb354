//! Tests for rounding.
