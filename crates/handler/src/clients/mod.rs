//! One client per Microsoft API. Each knows its paths, api-versions and models, and nothing of tools.

pub mod arm;
pub mod defender;
pub mod graph;
pub mod ids;
pub mod log_analytics;
pub mod odata;
pub mod open;

pub use open::Open;
