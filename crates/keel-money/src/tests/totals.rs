//! Tests for totals.
