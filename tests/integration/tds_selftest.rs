//! Tests of the TDS test server itself (being written).
