//! Tests for allocate.
