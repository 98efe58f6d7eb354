//! Tests for parse.
