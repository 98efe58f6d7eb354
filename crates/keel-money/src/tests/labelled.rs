//! Tests for labelled.
