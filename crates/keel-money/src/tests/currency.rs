//! Tests for currency.
