//! TDS test server (being written).
