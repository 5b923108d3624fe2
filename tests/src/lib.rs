//! Integration tests live in tests/cli.
