//! Bounds applied to untrusted bodies where they are read.

/// Bounds on one presence body. Every parser in this crate takes one; the defaults fit the
/// largest legitimate bodies (a 1000-contact batched SUBSCRIBE or roaming-contacts list) with
/// headroom, and stop a hostile body long before it costs real memory or stack.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest body in bytes.
    pub max_body: usize,
    /// Deepest element nesting.
    pub max_depth: usize,
    /// Most elements in one document.
    pub max_elements: usize,
    /// Most attributes on one element (namespace declarations included).
    pub max_attributes: usize,
    /// Most parts in one `multipart/related` body.
    pub max_parts: usize,
}

impl Limits {
    /// Defaults: 512 KiB, depth 32, 20 000 elements, 64 attributes, 2 000 parts.
    pub const DEFAULT: Self = Self {
        max_body: 512 * 1024,
        max_depth: 32,
        max_elements: 20_000,
        max_attributes: 64,
        max_parts: 2_000,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}
