//! Opaque XML the server keeps and forwards without interpreting it.

use std::fmt;
use std::sync::Arc;

use crate::{BodyError, Limits};

/// One well-formed XML element, self-contained in its namespaces, held as text.
///
/// Most Lync category values (`contactCard`, `calendarData`, `device`, `userProperties`, ...)
/// and PIDF extension elements are only stored and forwarded: parsing them into types would cost
/// work on every publish and lose whatever a newer client put there. A fragment lifted out of a
/// larger document gets declarations for the namespaces it inherited, so it means the same
/// wherever it is pasted. Clones share the text.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct XmlFragment(Arc<str>);

impl XmlFragment {
    /// Checks that `xml` is one well-formed element (an XML declaration, comments and
    /// whitespace around it are dropped) and keeps it. Used by code that builds category values
    /// itself, e.g. a note set through the admin interface.
    pub fn parse(xml: &str) -> Result<Self, BodyError> {
        let doc = crate::xml::parse(xml.as_bytes(), &Limits::DEFAULT)?;
        Ok(doc.fragment(&doc.root))
    }

    /// The element's text, ready to be pasted into a document.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn from_checked(xml: String) -> Self {
        Self(xml.into())
    }
}

impl fmt::Debug for XmlFragment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("XmlFragment").field(&&*self.0).finish()
    }
}

impl fmt::Display for XmlFragment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
