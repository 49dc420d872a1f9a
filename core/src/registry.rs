//! md's object model as a value: units, names, refcounted handles, removal rules.
// TODO(helper)

/// Registry misuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The unit or name is already taken (EEXIST).
    #[error("already exists")]
    Exists,
}
