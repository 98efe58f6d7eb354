//! Tests for money.
