//! Arrays of member devices: create, assemble, stop, examine.
// TODO

/// An array operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArrayError {
    /// Invalid parameters.
    #[error("{0}")]
    Invalid(alloc::string::String),
}
