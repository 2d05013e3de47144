//! KQL subset.
