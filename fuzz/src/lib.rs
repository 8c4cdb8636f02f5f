//! Helpers shared by the fuzz targets in `fuzz_targets/`: reference models written without
//! looking at how the library does the same thing, so that the two can be compared.
//!
//! Each target checks properties of one parser or data structure of mcpbus; see README.md for
//! the list and for how to run them.

pub mod http;
pub mod naive;
