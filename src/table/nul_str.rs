//! Strings stored with a trailing NUL, so that the C layer hands out pointers into the table
//! without copying, and Rust sees them without it.

/// A string followed by one NUL byte (not part of the string).
#[derive(Debug)]
pub(crate) struct NulStr(Box<str>);

impl NulStr {
    pub(crate) fn new(s: &str) -> Self {
        let mut v = String::with_capacity(s.len() + 1);
        v.push_str(s);
        v.push('\0');
        NulStr(v.into_boxed_str())
    }

    /// The string, without the NUL.
    pub(crate) fn as_str(&self) -> &str {
        &self.0[..self.0.len() - 1]
    }

    /// The string with its NUL, for C.
    pub(crate) fn with_nul(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_nul_apart() {
        let s = NulStr::new("10.0.0.5:9000");
        assert_eq!(s.as_str(), "10.0.0.5:9000");
        assert_eq!(s.with_nul(), "10.0.0.5:9000\0");
        assert_eq!(NulStr::new("").as_str(), "");
    }
}
