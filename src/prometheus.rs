//! Writing the Prometheus text exposition format (version 0.0.4): samples grouped by family,
//! each family's HELP and TYPE lines once before its first sample, label values escaped.

use std::fmt::Write as _;

pub const GAUGE: &str = "gauge";
pub const COUNTER: &str = "counter";

/// Families in the order they are written: name, type, help.
struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
}

/// Text being written: a family's HELP and TYPE lines come once, before its first sample.
pub struct Writer {
    out: String,
    current: &'static str,
}

impl Writer {
    pub fn new() -> Self {
        Writer {
            out: String::with_capacity(4096),
            current: "",
        }
    }

    fn family(&mut self, f: &Family) {
        if self.current != f.name {
            let _ = writeln!(self.out, "# HELP {} {}", f.name, f.help);
            let _ = writeln!(self.out, "# TYPE {} {}", f.name, f.kind);
            self.current = f.name;
        }
    }

    /// One sample of `name` (HELP and TYPE first, when it is a new family).
    pub fn sample(
        &mut self,
        name: &'static str,
        kind: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
        value: f64,
    ) {
        self.family(&Family { name, kind, help });
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(k);
                self.out.push_str("=\"");
                escape_into(&mut self.out, v);
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        if value.fract() == 0.0 && value.abs() < 1e15 {
            let _ = writeln!(self.out, "{}", value as i64);
        } else {
            let _ = writeln!(self.out, "{value}");
        }
    }
}

/// A label value as the format wants it: backslash, double quote and newline escaped.
fn escape_into(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

impl Default for Writer {
    fn default() -> Self {
        Self::new()
    }
}

impl Writer {
    /// The text written.
    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_once_labels_escaped() {
        let mut w = Writer::new();
        w.sample("a_total", COUNTER, "A.", &[("p", "x\"y\\z\n")], 3.0);
        w.sample("a_total", COUNTER, "A.", &[("p", "w")], 4.0);
        w.sample("b", GAUGE, "B.", &[], 0.25);
        assert_eq!(
            w.finish(),
            "# HELP a_total A.\n# TYPE a_total counter\na_total{p=\"x\\\"y\\\\z\\n\"} 3\n\
             a_total{p=\"w\"} 4\n# HELP b B.\n# TYPE b gauge\nb 0.25\n"
        );
    }
}
